"""End to end with the real default backend (Whisper tiny.en through faster-whisper)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from click.testing import CliRunner

from lastmile.cli import cli

from helpers import demo_rows, demo_subset_pack


def _direct_decodes(paths: list[str]) -> list[str]:
    """faster-whisper's own transcripts of the files, with lastmile's documented settings."""
    import soundfile as sf
    from faster_whisper import WhisperModel
    from threadpoolctl import threadpool_limits

    from lastmile.asr.faster_whisper import default_model_path

    model = WhisperModel(str(default_model_path()), device="cpu", compute_type="int8")
    out = []
    for path in paths:
        audio, _ = sf.read(path, dtype="float32")
        with threadpool_limits(1, user_api="blas"):
            segments, _ = model.transcribe(
                audio,
                language="en",
                beam_size=1,
                temperature=0.0,
                condition_on_previous_text=False,
                vad_filter=False,
                without_timestamps=False,
            )
            out.append(" ".join(s.text.strip() for s in segments).strip())
    return out


def test_three_us_utterances_two_conditions(tmp_path: Path):
    rows = [r for r in demo_rows(groups=("us",), per_group=3)][:3]
    assert len(rows) == 3
    pack = demo_subset_pack(
        tmp_path / "pack",
        rows,
        seed=5,
        conditions=[{"noise": {"type": "hum", "fundamental_hz": 60}, "snr_db": 10}],
    )
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli,
        ["run", str(pack), "--out", str(out), "--workers", "1", "-q"],
        catch_exceptions=False,
    )
    assert result.exit_code in (0, 1), result.output
    with (out / "items.csv").open() as fh:
        items = list(csv.DictReader(fh))
    assert len(items) == 6
    assert all(not r["error"] for r in items)
    clean = [r for r in items if r["condition_id"] == "clean"]
    errors = sum(
        int(r["substitutions"]) + int(r["deletions"]) + int(r["insertions"]) for r in clean
    )
    words = sum(int(r["n_ref"]) for r in clean)
    assert words > 10
    # tiny.en's own errors: 7 of 23 words ("100 and 30" for "one hundred and thirty",
    # "and be us" for "and peanuts", "my old" for "mild"); what it says is recorded whole:
    assert errors / words < 0.35, [r["hypothesis_raw"] for r in clean]
    audio_of = {r["id"]: r["audio"] for r in rows}
    assert [r["hypothesis_raw"] for r in clean] == _direct_decodes(
        [audio_of[r["utterance_id"]] for r in clean]
    )
    hum = [r for r in items if r["condition_id"] != "clean"]
    assert all(abs(float(r["achieved_snr_db"]) - 10) < 0.05 for r in hum)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["run"]["normalizer"] == "default"
    assert "Pooled" in result.output or "clean" in result.output
    for name in ("summary.md", "report.html", "run.json"):
        assert (out / name).is_file()


def test_cache_info_and_clear_after_a_run(tmp_path: Path):
    rows = demo_rows(groups=("us",), per_group=1)
    pack = demo_subset_pack(tmp_path / "pack", rows, fairness={"min_speakers": 2})
    runner = CliRunner()
    first = runner.invoke(
        cli,
        ["run", str(pack), "--out", str(tmp_path / "a"), "-j", "1", "-q"],
        catch_exceptions=False,
    )
    assert first.exit_code == 0, first.output
    info = json.loads(runner.invoke(cli, ["cache", "info", "--json"]).output)
    assert info["entries"] >= 1 and info["bytes"] > 0
    again = runner.invoke(
        cli, ["run", str(pack), "--out", str(tmp_path / "b"), "-j", "1"], catch_exceptions=False
    )
    assert "1 from cache" in again.output
    nocache = runner.invoke(
        cli,
        ["run", str(pack), "--out", str(tmp_path / "c"), "-j", "1", "--no-cache"],
        catch_exceptions=False,
    )
    assert "0 from cache" in nocache.output
    cleared = runner.invoke(cli, ["cache", "clear"], catch_exceptions=False)
    assert "removed" in cleared.output
    assert json.loads(runner.invoke(cli, ["cache", "info", "--json"]).output)["entries"] == 0
