"""Runs through a remote (I/O-bound) backend: the ``openai`` backend against a real HTTP server
on the loopback interface that decodes with the shipped Whisper tiny.en."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from lastmile.asr import build_backend
from lastmile.cli import cli
from lastmile.run import RunOptions, run_pack
from lastmile.testing_server import TranscriptionServer

from helpers import demo_rows, demo_subset_pack

KEY = "sk-lastmile-run-test-9f8e7d6c5b4a"
HUM = {"id": "hum10", "noise": {"type": "hum", "fundamental_hz": 60}, "snr_db": 10}


def _items(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "items.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def local():
    return build_backend("faster-whisper")


@pytest.mark.timeout(300)
def test_remote_run_equals_the_local_run_item_for_item(tmp_path: Path, local):
    """With float WAV the server decodes exactly the rendered samples (16-bit WAV, the
    default, quantizes them, which can change a Whisper transcript: seen on this pack)."""
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    pack = demo_subset_pack(tmp_path / "pack", rows, seed=3, conditions=[HUM])
    here = run_pack(pack, RunOptions(out=tmp_path / "local", use_cache=False, reports=False))
    with TranscriptionServer(backend=local) as server:
        spec = f"openai:{server.base_url}?model=tiny.en&concurrency=4&sample_format=float32"
        remote = run_pack(
            pack, RunOptions(asr=spec, out=tmp_path / "remote", use_cache=False, reports=False)
        )
        assert len(server.requests) == remote.n_items  # one request per item, no retries
    assert here.n_failed == remote.n_failed == 0
    a = {r["item_id"]: r for r in _items(here.run_dir)}
    b = {r["item_id"]: r for r in _items(remote.run_dir)}
    assert a.keys() == b.keys() and len(a) == 8
    for item_id, row in a.items():
        assert b[item_id]["hypothesis_raw"] == row["hypothesis_raw"], item_id
        assert float(b[item_id]["decode_s"]) > 0  # each item's own request latency


@pytest.mark.timeout(120)
def test_requests_are_in_flight_together_and_faults_fail_single_items(tmp_path: Path):
    rows = demo_rows(per_group=2)  # 14 utterances × 2 conditions
    pack = demo_subset_pack(tmp_path / "pack", rows, seed=1, conditions=[HUM])
    with TranscriptionServer(text="the patient is well", latency_s=0.3) as server:
        server.queue("500", "badjson")  # one retried and answered, one item fails
        spec = f"openai:{server.base_url}?model=m&concurrency=8&max_retries=0&backoff_s=0"
        t0 = time.perf_counter()
        result = run_pack(
            pack,
            RunOptions(asr=spec, out=tmp_path / "run", use_cache=False, reports=False),
        )
        wall = time.perf_counter() - t0
    items = _items(result.run_dir)
    assert len(items) == 28
    failed = [r for r in items if r["error"]]
    assert len(failed) == 2  # max_retries=0: the 500 and the non-JSON answer each fail one
    assert any("HTTP 500" in r["error"] for r in failed)
    assert any("not JSON" in r["error"] for r in failed)
    # 28 requests of 0.3 s one after another would take 8.4 s
    assert wall < 5.0, wall


@pytest.mark.timeout(120)
def test_a_refused_key_stops_the_run_at_once_and_no_key_is_written(tmp_path: Path, monkeypatch):
    rows = demo_rows(per_group=2)
    pack = demo_subset_pack(tmp_path / "pack", rows, seed=1, conditions=[HUM])
    monkeypatch.setenv("LASTMILE_RUN_TEST_KEY", KEY)
    with TranscriptionServer(text="ok", api_key=KEY) as server:
        spec = f"openai:{server.base_url}?model=m&api_key_env=LASTMILE_RUN_TEST_KEY"
        ok = CliRunner().invoke(
            cli,
            ["run", str(pack), "--asr", spec, "--out", str(tmp_path / "ok"), "-q"],
            catch_exceptions=False,
        )
        assert ok.exit_code in (0, 1), ok.output
        # each item's request latency, summarised in every report
        latency = json.loads((tmp_path / "ok" / "summary.json").read_text())["latency"]
        assert latency["n_items"] == 28 and latency["p50_s"] > 0
        assert "Backend latency per item: median" in ok.output
        for name in ("summary.md", "report.html"):
            assert "Backend latency per item" in (tmp_path / "ok" / name).read_text()
        server.queue("401")
        refused = CliRunner().invoke(
            cli,
            ["run", str(pack), "--asr", spec, "--out", str(tmp_path / "no"), "--no-cache", "-q"],
            catch_exceptions=False,
        )
        answered = len(server.requests)
    assert refused.exit_code == 3, refused.output
    assert "refused the API key" in refused.output
    assert refused.output.count("refused the API key") == 1
    assert answered <= 28 + 8 + 1  # the first run, then at most what was already in flight
    for folder in (tmp_path / "ok", tmp_path / "no"):
        for path in folder.rglob("*"):
            if path.is_file():
                assert KEY.encode() not in path.read_bytes(), path
