"""The Ray executor (``--executor ray``) with a real local Ray and a real two-node cluster on
loopback: the same items as the local pool, shipped audio, dead actors, a killed driver,
and the errors given before any item is sent."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from lastmile.run import RunOptions, run_pack
from lastmile.scenario.pack import load_pack

from helpers import demo_rows, demo_subset_pack

# A backend whose transcript is the digest of the audio it was given: two runs with equal
# transcripts rendered the same bytes. With kill=DIGEST its process exits on that audio (a
# crash in native code); with sleep_s it is a slow decoder.
AUDIOHASH = '''
import hashlib
import os
import time

import numpy as np


class AudioHash:
    name = "audiohash"
    sample_rate = 16000

    def __init__(self, kill="", sleep_s=0.0):
        self.kill = kill
        self.sleep_s = float(sleep_s)

    @classmethod
    def from_spec(cls, spec):
        return cls(**dict(spec.params))

    def fingerprint(self):
        return "audiohash/1"

    def transcribe(self, batch):
        out = []
        for audio in batch:
            digest = hashlib.sha256(np.ascontiguousarray(audio, "<f4").tobytes()).hexdigest()
            if self.kill and digest.startswith(self.kill):
                os._exit(1)
            time.sleep(self.sleep_s)
            out.append("h" + digest[:24])
        return out
'''


def _write_plugin(site: Path) -> None:
    info = site / "audiohash_asr-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (site / "audiohash_asr.py").write_text(AUDIOHASH)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: audiohash-asr\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lastmile.asr]\naudiohash = audiohash_asr:AudioHash\n")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The plugin installed for this process and for every process it starts (Ray's)."""
    folder = tmp_path_factory.mktemp("site")
    _write_plugin(folder)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder), old) if p)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))
    if old is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = old


@pytest.fixture(scope="module")
def local_ray(site: Path) -> Iterator[None]:
    """One local Ray (2 CPUs) shared by this module's in-process runs."""
    temp = tempfile.mkdtemp(prefix="lmray-")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=128 * 1024 * 1024,
        _temp_dir=temp,
    )
    yield
    ray.shutdown()


def _pack(folder: Path, **fields) -> Path:
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    fields.setdefault(
        "conditions", [{"noise": "pink", "snr_db": 5}, {"noise": {"type": "hum"}, "snr_db": 10}]
    )
    return demo_subset_pack(folder, rows, fairness={"min_speakers": 2}, **fields)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "items.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    for row in rows:
        row.pop("decode_s")  # a timing
    return sorted(rows, key=lambda r: r["item_id"])


@pytest.mark.timeout(240)
def test_the_same_items_as_the_local_pool_byte_for_byte(tmp_path: Path, local_ray: None):
    pack = _pack(tmp_path / "p")
    common = {"asr": "audiohash", "workers": 2, "use_cache": False, "reports": False}
    run_pack(pack, RunOptions(out=tmp_path / "local", **common))
    result = run_pack(pack, RunOptions(out=tmp_path / "ray", executor="ray", **common))
    local, remote = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert result.n_items == len(remote) == 12
    assert all(r["hypothesis_raw"].startswith("h") and not r["error"] for r in remote)
    assert len({r["hypothesis_raw"] for r in remote}) == 12  # every rendering differs
    assert remote == local
