"""The two adapters in examples/backends/, run for real in server mode: faster-whisper with
the shipped tiny.en (its transcripts equal the built-in backend's on the same samples) and a
transformers pipeline over tiny random models built here (no download)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_transformers import build_ctc, build_whisper

from lastmile.asr import build_backend
from lastmile.asr.command_server import CommandServerBackend
from lastmile.audio import read_audio
from lastmile.cli import cli
from lastmile.testing import speech_like, tone

from helpers import demo_rows, demo_subset_pack

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "backends"
FASTER_WHISPER = EXAMPLES / "faster_whisper_server.py"
TRANSFORMERS = EXAMPLES / "transformers_server.py"
RATE = 16000


def _server(script: Path, *args: str, **params) -> CommandServerBackend:
    command = " ".join([sys.executable, str(script), *args])
    backend = build_backend({"name": "command-server", "argument": command, **params})
    assert isinstance(backend, CommandServerBackend)
    return backend


@pytest.mark.timeout(300)
def test_the_faster_whisper_adapter_gives_the_built_in_backends_transcripts(tmp_path: Path):
    """Same samples (float WAV), same model, same decoding: the same text, in a real run
    under noise (rendered audio, not just the corpus files)."""
    rows = demo_rows(groups=("us", "gb-rp", "in-north"), per_group=1)
    conditions = [{"id": "pink-5db", "noise": {"type": "pink"}, "snr_db": 5}]
    adapter = {
        "name": "command",
        "argument": f"{sys.executable} {FASTER_WHISPER}",
        "mode": "server",
        "sample_format": "float32",
    }
    hyps = {}
    for label, asr in (("adapter", adapter), ("built-in", "faster-whisper")):
        pack = demo_subset_pack(
            tmp_path / label, rows, asr=asr, conditions=conditions, fairness={"min_speakers": 2}
        )
        out = tmp_path / f"run-{label}"
        result = CliRunner().invoke(cli, ["run", str(pack), "--out", str(out), "-j", "1", "-q"])
        assert result.exit_code in (0, 1), result.output
        with (out / "items.csv").open() as fh:
            items = list(csv.DictReader(fh))
        assert all(r["error"] == "" for r in items), [r["error"] for r in items]
        hyps[label] = {r["item_id"]: r["hypothesis_raw"] for r in items}
    assert len(hyps["adapter"]) == 2 * len(rows)
    assert hyps["adapter"] == hyps["built-in"]
    assert sum(bool(t) for t in hyps["adapter"].values()) >= len(rows)  # real speech heard


@pytest.mark.timeout(120)
def test_16_bit_wav_is_what_pcm16_sends(tmp_path: Path):
    """With the default sample_format the adapter hears the 16-bit rounding of the samples:
    its transcript equals the built-in backend's decode of the rounded audio."""
    clip = read_audio(demo_rows(groups=("us",), per_group=1)[0]["audio"]).samples
    rounded = (np.round(np.clip(clip, -1, 1) * 32767) / 32767).astype(np.float32)
    server = _server(FASTER_WHISPER)
    try:
        text = server.transcribe([clip])[0]
    finally:
        server.close()
    builtin = build_backend("faster-whisper")
    assert text == builtin.transcribe([rounded])[0] and text


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_ctc(tmp_path_factory.mktemp("ctc") / "model")


def _clips() -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    return [
        speech_like(rng, duration_s=1.0, sample_rate=RATE),
        tone(freq_hz=440.0, duration_s=1.0, sample_rate=RATE),
        speech_like(rng, duration_s=1.7, sample_rate=RATE),
    ]


@pytest.mark.timeout(180)
def test_the_transformers_adapter_decodes_a_ctc_model_as_the_built_in_backend(ctc_dir: Path):
    """A wav2vec2 CTC model (random weights: gibberish, but input-dependent): the pipeline
    in the adapter, one request at a time, gives the built-in transformers backend's text."""
    clips = _clips()
    server = _server(TRANSFORMERS, "--model", str(ctc_dir), sample_format="float32")
    try:
        texts = server.transcribe(clips)
        again = server.transcribe(clips)
    finally:
        server.close()
    assert all(texts) and len(set(texts)) == len(clips)
    assert again == texts
    assert texts == build_backend(f"transformers:{ctc_dir}").transcribe(clips)


@pytest.mark.timeout(180)
def test_the_transformers_adapter_runs_a_whisper_model(tmp_path: Path):
    folder = build_whisper(tmp_path / "whisper")
    clips = _clips()
    server = _server(
        TRANSFORMERS, "--model", str(folder), "--max-new-tokens", "12", sample_format="float32"
    )
    try:
        texts = server.transcribe(clips)
        assert server.transcribe(clips) == texts
    finally:
        server.close()
    assert all(isinstance(t, str) for t in texts) and len(set(texts)) >= 2
    assert not any("<|" in t for t in texts)


def test_the_adapters_refuse_a_model_folder_that_is_not_one(tmp_path: Path):
    from lastmile.errors import ConfigError

    with pytest.raises(ConfigError, match="exited with status 2; .*no config.json there"):
        _server(TRANSFORMERS, "--model", str(tmp_path))
    with pytest.raises(ConfigError, match="exited with status 1; .*model.bin"):
        _server(FASTER_WHISPER, "--model", str(tmp_path))


def test_a_sample_rate_the_model_does_not_take_is_refused_when_built(ctc_dir: Path):
    from lastmile.errors import ConfigError

    with pytest.raises(ConfigError, match="reads audio at 16000 Hz .* set sample_rate: 16000"):
        _server(TRANSFORMERS, "--model", str(ctc_dir), sample_rate=8000)
