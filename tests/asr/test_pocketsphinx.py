"""PocketSphinx: what lastmile records is PocketSphinx's own decode of the corpus file, and each
setting lastmile hands it has the effect it claims."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from lastmile.asr import build_backend
from lastmile.asr.pocketsphinx import to_pcm16
from lastmile.cli import cli
from lastmile.errors import ConfigError

from helpers import demo_rows, demo_subset_pack


def _direct(path: str) -> str:
    """PocketSphinx's own decoder, default configuration, on the file's 16-bit samples."""
    from pocketsphinx import Decoder

    samples, rate = sf.read(path, dtype="int16")
    assert rate == 16000
    decoder = Decoder()
    decoder.start_utt()
    decoder.process_raw(samples.tobytes(), full_utt=True)
    decoder.end_utt()
    hyp = decoder.hyp()
    return hyp.hypstr if hyp is not None else ""


def test_samples_reach_the_decoder_unchanged():
    row = demo_rows(groups=("us",), per_group=1)[0]
    as_float, _ = sf.read(row["audio"], dtype="float32")
    as_int, _ = sf.read(row["audio"], dtype="int16")
    assert np.array_equal(to_pcm16(as_float), as_int)
    # the truncating conversion used before moved most samples by one step
    truncated = (np.clip(as_float, -1, 1) * 32767).astype("<i2")
    assert np.mean(truncated != as_int) > 0.5
    assert np.array_equal(to_pcm16(np.array([-1.5, 1.5, 1.0])), [-32768, 32767, 32767])


def test_pocketsphinx_is_transparent_through_a_real_run(tmp_path: Path):
    rows = demo_rows(groups=("us", "scottish"), per_group=2)
    pack = demo_subset_pack(tmp_path / "pack", rows, asr="pocketsphinx")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, ["run", str(pack), "--out", str(out), "-j", "1", "-q"])
    assert result.exit_code in (0, 1), result.output
    with (out / "items.csv").open() as fh:
        clean = {
            r["utterance_id"]: r["hypothesis_raw"]
            for r in csv.DictReader(fh)
            if r["condition_id"] == "clean"
        }
    assert len(clean) == len(rows)
    for row in rows:
        assert clean[row["id"]] == _direct(row["audio"]), row["id"]
    assert any(clean.values())  # real words, not empty cells


def test_a_malformed_model_folder_is_a_config_error_not_an_exit(tmp_path: Path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "mdef").write_text("not a model definition\n")
    # the library itself ends the process that builds such a decoder
    probe = "import sys\nfrom pocketsphinx import Decoder\nDecoder(hmm=sys.argv[1])\nprint('alive')"
    done = subprocess.run(
        [sys.executable, "-c", probe, str(broken)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 1 and "alive" not in done.stdout
    assert "FATAL" in done.stderr
    with pytest.raises(ConfigError, match=r"no decoder can be built .*FATAL: .*mdef"):
        build_backend(f"pocketsphinx:{broken}")


def test_model_folder_argument(tmp_path: Path):
    from pocketsphinx import get_model_path

    wheel = Path(get_model_path()) / "en-us" / "en-us"
    copy = tmp_path / "en-us"
    shutil.copytree(wheel, copy)
    row = demo_rows(groups=("us",), per_group=1)[0]
    audio, _ = sf.read(row["audio"], dtype="float32")
    default = build_backend("pocketsphinx")
    copied = build_backend(f"pocketsphinx:{copy}")
    assert copied.transcribe([audio]) == default.transcribe([audio])
    assert copied.fingerprint() == default.fingerprint()  # same content, same cache key
    with (copy / "noisedict").open("a") as fh:  # a changed model: another cache key
        fh.write("<sil> SIL\n")
    assert build_backend(f"pocketsphinx:{copy}").fingerprint() != default.fingerprint()
    with pytest.raises(ConfigError, match="not a PocketSphinx acoustic model folder"):
        build_backend(f"pocketsphinx:{tmp_path / 'missing'}")
