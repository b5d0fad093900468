"""The plugin contract: the README's "Write a backend" template, installed as a real plugin
(a distribution with an entry point in the ``lastmile.asr`` group, on the path of a child
process), is listed, validated, checked and run; ``from_spec`` is optional; plugin errors
exit 2 (bad spec) or 3 (runtime), never 1."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lastmile.asr import BackendSpec, build_backend
from lastmile.asr.faster_whisper import default_model_path
from lastmile.audio import read_audio
from lastmile.errors import ConfigError

from helpers import demo_rows, demo_subset_pack

README = Path(__file__).resolve().parents[2] / "README.md"

BROKEN = '''
import numpy as np


class Broken:
    """Builds fine, fails every decode."""

    name = "broken"
    sample_rate = 16000

    def __init__(self, *, level: int = 1):
        self.level = level

    def fingerprint(self):
        return "broken-1"

    def transcribe(self, batch):
        raise RuntimeError("the decoder lost its GPU")


class NotText:
    name = "not-text"
    sample_rate = 16000

    def fingerprint(self):
        return "not-text-1"

    def transcribe(self, batch):
        return [len(a) for a in batch]
'''


def template() -> str:
    """The plugin module in README.md's "Write a backend" section."""
    section = README.read_text(encoding="utf-8").split("### Write a backend", 1)[1]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    found = [b for b in blocks if b.startswith("# my_asr.py")]
    assert len(found) == 1, "README: the Write a backend section lost its my_asr.py block"
    return found[0]


def install_plugins(site: Path) -> Path:
    """A folder holding the template and a broken plugin as modules, and a distribution
    (dist-info with entry_points.txt) registering them, as pip would install them."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "my_asr.py").write_text(template())
    (site / "broken_asr.py").write_text(BROKEN)
    dist = site / "my_asr_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-asr-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[lastmile.asr]\n"
        "my-asr = my_asr:MyASR\n"
        "broken = broken_asr:Broken\n"
        "not-text = broken_asr:NotText\n"
    )
    return site


def lastmile(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-m", "lastmile.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=240,
        check=False,
    )


def template_class(site: Path) -> type:
    """The template's class, imported here from the installed module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("readme_my_asr", site / "my_asr.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.MyASR


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugins(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def model() -> str:
    return str(default_model_path())


def test_the_template_is_listed_as_usable(site: Path):
    done = lastmile(site, "asr", "list")
    assert done.returncode == 0, done.stderr
    line = next(ln for ln in done.stdout.splitlines() if "my-asr" in ln)
    assert "yes" in line and "my_asr:MyASR" in line


@pytest.mark.timeout(300)
def test_the_template_runs_a_pack_end_to_end(site: Path, model: str, tmp_path: Path):
    """What failed before: listed, validated, then `run` crashed on the missing from_spec."""
    rows = demo_rows(groups=("us", "gb-rp"), per_group=1)
    pack = demo_subset_pack(tmp_path / "pack", rows, asr=f"my-asr:{model}?beam_size=1")
    done = lastmile(site, "validate", str(pack))
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "run"
    done = lastmile(site, "run", str(pack), "--out", str(out), "-j", "1", "-q")
    assert done.returncode in (0, 1), done.stdout + done.stderr
    with (out / "items.csv").open() as fh:
        items = list(csv.DictReader(fh))
    assert len(items) == len(rows) and all(r["error"] == "" for r in items)
    # what was recorded is the template's own decode of each corpus file (the clean
    # condition hands it the file's samples), and it is real speech recognition
    plugin = template_class(site)(model)
    for row in items:
        audio = next(r["audio"] for r in rows if r["id"] == row["utterance_id"])
        direct = plugin.transcribe([read_audio(audio, sample_rate=16000).samples])[0]
        assert row["hypothesis_raw"] == direct
    assert sum(int(r["hits"]) for r in items) >= 5, [r["hypothesis_raw"] for r in items]
    fingerprint = json.loads(json.loads((out / "run.json").read_text())["backend"]["fingerprint"])
    assert fingerprint["backend"] == "my-asr" and fingerprint["beam_size"] == 1


@pytest.mark.timeout(300)
def test_asr_check_prints_the_template_transcript_latency_and_fingerprint(site: Path, model: str):
    clip = demo_rows(groups=("us",), per_group=1)[0]["audio"]
    done = lastmile(site, "asr", "check", f"my-asr:{model}", "--audio", clip, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["backend"] == "my-asr" and report["deterministic"] is True
    assert report["latency_s"] > 0 and report["first_latency_s"] > 0
    assert json.loads(report["fingerprint"])["model"]
    # what `asr check` printed is the template's own decode of that clip
    direct = template_class(site)(model).transcribe([read_audio(clip, sample_rate=16000).samples])[
        0
    ]
    assert report["transcript"] == direct and direct


def test_asr_check_on_the_demo_clip_by_default(site: Path, model: str):
    done = lastmile(site, "asr", "check", f"my-asr:{model}")
    assert done.returncode == 0, done.stderr
    for label in ("transcript:", "reference:", "latency:", "fingerprint:"):
        assert label in done.stdout
    assert "demo_corpus" in done.stdout


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("my-asr:{model}?beam=5", "beam"),  # a TypeError from the constructor
        ("my-asr:{model}?beam_size=0", "beam_size: expected a whole number >= 1"),
        ("my-asr:/nowhere", "no model.bin there"),
        ("no-such-asr", "unknown backend 'no-such-asr'"),
    ],
)
def test_a_bad_plugin_spec_exits_2_naming_it(site: Path, model: str, spec: str, needle: str):
    done = lastmile(site, "asr", "check", spec.format(model=model))
    assert done.returncode == 2, done.stdout + done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("broken", "the decoder lost its GPU"),
        ("not-text", "transcribe() must return strings; it returned"),
    ],
)
def test_a_plugin_failing_at_run_time_exits_3(site: Path, spec: str, needle: str):
    done = lastmile(site, "asr", "check", spec)
    assert done.returncode == 3, done.stdout + done.stderr
    assert needle in done.stderr and "Traceback" not in done.stderr


class Plain:
    """A class with no from_spec: the spec goes to its constructor."""

    name = "plain"
    sample_rate = 8000

    def __init__(self, model: str = "default", *, beam: int = 1) -> None:
        self.model, self.beam = model, beam

    def fingerprint(self) -> str:
        return f"plain/{self.model}/{self.beam}"

    def transcribe(self, batch):
        return [f"{len(a)}" for a in batch]


def test_without_from_spec_the_constructor_gets_the_argument_and_parameters(monkeypatch):
    from lastmile.asr import registry

    monkeypatch.setattr(registry, "backend_class", lambda name: Plain)
    built = build_backend("plain:/models/x?beam=5")
    assert (built.model, built.beam) == ("/models/x", 5)
    assert build_backend(BackendSpec(name="plain")).model == "default"
    assert built.transcribe([np.zeros(80, dtype=np.float32)]) == ["80"]
    with pytest.raises(ConfigError, match="unexpected keyword argument 'beam_size'"):
        build_backend("plain:/models/x?beam_size=5")
    salted = build_backend("plain?cache_salt=v2")  # the registry handles cache_salt
    assert "v2" in salted.fingerprint() and "plain/default/1" in salted.fingerprint()


@pytest.mark.timeout(240)
def test_lastmile_run_with_a_bad_plugin_exits_2_or_3_never_1(site: Path, model: str, tmp_path):
    rows = demo_rows(groups=("us", "gb-rp"), per_group=1)
    pack = demo_subset_pack(tmp_path / "pack", rows)
    bad_spec = lastmile(
        site, "run", str(pack), "--asr", f"my-asr:{model}?beam=5", "--out", str(tmp_path / "a")
    )
    assert bad_spec.returncode == 2, bad_spec.stderr
    assert "beam" in bad_spec.stderr and not (tmp_path / "a" / "items.csv").exists()
    failing = lastmile(site, "run", str(pack), "--asr", "broken", "--out", str(tmp_path / "b"))
    assert failing.returncode == 3, failing.stderr  # every item failed: no result
    with (tmp_path / "b" / "items.csv").open() as fh:
        errors = [r["error"] for r in csv.DictReader(fh)]
    assert errors and all("the decoder lost its GPU" in e for e in errors)
