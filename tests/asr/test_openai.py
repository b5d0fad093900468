"""The ``openai`` backend against a real HTTP server on the loopback interface that decodes
with the shipped Whisper tiny.en (``lastmile.testing_server``), with injected faults."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from lastmile.asr import build_backend
from lastmile.asr.openai_compat import RateLimiter, retry_after_s
from lastmile.errors import BackendError, ConfigError, FatalBackendError
from lastmile.testing_server import TranscriptionServer

from helpers import demo_rows

KEY = "sk-lastmile-test-0123456789abcdef"


@pytest.fixture(scope="module")
def local():
    return build_backend("faster-whisper")


@pytest.fixture(scope="module")
def audios():
    rows = demo_rows(groups=("us", "scottish"), per_group=2)
    return [sf.read(r["audio"], dtype="float32")[0] for r in rows]


def _spec(server: TranscriptionServer, **params: object) -> str:
    query = "&".join(f"{k}={v}" for k, v in {"model": "tiny.en", **params}.items())
    return f"openai:{server.base_url}?{query}"


def _pcm16(audio: np.ndarray) -> np.ndarray:
    """What a 16-bit WAV carries of ``audio`` (the server reads it back as float)."""
    return (np.round(np.clip(audio, -1, 1) * 32767) / 32768).astype(np.float32)


def test_remote_transcripts_equal_the_local_backend(local, audios):
    with TranscriptionServer(backend=local) as server:
        remote = build_backend(_spec(server, concurrency=4))
        got = remote.transcribe(audios)
        exact = build_backend(_spec(server, sample_format="float32")).transcribe(audios)
    # 16-bit WAV (the default): the local backend on the same 16-bit samples
    assert got == local.transcribe([_pcm16(a) for a in audios])
    # float WAV: the local backend on the very same samples
    assert exact == local.transcribe(audios)
    assert all(text for text in got)
    # every request carried the model and was answered once
    assert [s for s, _, _ in server.requests] == [200] * 2 * len(audios)
    assert {m for _, m, _ in server.requests} == {"tiny.en"}


def test_retries_honour_retry_after_and_are_bounded(local, audios):
    with TranscriptionServer(backend=local, faults=["429", "500", "drop", "503"]) as server:
        remote = build_backend(_spec(server, concurrency=1, backoff_s=0.01))
        t0 = time.perf_counter()
        outcome = remote.transcribe_detailed(audios[:1])[0]
        elapsed = time.perf_counter() - t0
    assert outcome.error is None and outcome.retries == 4
    assert outcome.text == local.transcribe(audios[:1])[0]
    assert elapsed >= 0.2  # the 429's Retry-After: 0.2 was waited, not the 0.01 s backoff
    assert outcome.latency_s is not None and outcome.latency_s >= 0.2

    with TranscriptionServer(text="x", faults=["500"] * 10) as server:
        remote = build_backend(_spec(server, max_retries=2, backoff_s=0.0))
        outcome = remote.transcribe_detailed(audios[:1])[0]
        assert len(server.requests) == 3  # one try and two retries, no more
    assert outcome.text is None
    assert "gave up after 3 attempts" in outcome.error and "HTTP 500" in outcome.error


def test_timeouts_are_retried_then_fail_the_item_only(audios):
    with TranscriptionServer(text="fine", faults=["slow", "slow"], slow_s=1.0) as server:
        remote = build_backend(_spec(server, timeout_s=0.3, max_retries=1, backoff_s=0.0))
        outcomes = remote.transcribe_detailed(audios[:2])
    texts = sorted((o.text or "", o.error or "") for o in outcomes)
    # concurrency 4 (default): both first attempts time out; one item's retry is answered
    # unless the other's took the same slow slot; either way no item hangs past its retries
    assert all(("timeout_s=0.3" in err) or text == "fine" for text, err in texts)
    assert any(text == "fine" for text, _ in texts)


def test_malformed_answers_fail_the_item_with_a_clear_error(audios):
    with TranscriptionServer(text="ok", faults=["badjson", "notext"]) as server:
        remote = build_backend(_spec(server, concurrency=1))
        outcomes = remote.transcribe_detailed(audios[:3])
    assert "not JSON" in outcomes[0].error and "OpenAI-compatible" in outcomes[0].error
    assert "no string 'text'" in outcomes[1].error
    assert outcomes[2].text == "ok" and outcomes[2].error is None
    with (
        pytest.raises(BackendError, match="not JSON"),
        TranscriptionServer(text="ok", faults=["badjson"]) as server,
    ):
        build_backend(_spec(server)).transcribe(audios[:1])


def test_wrong_key_unknown_model_and_unreachable_server_are_fatal(audios, monkeypatch):
    monkeypatch.setenv("LASTMILE_TEST_KEY", "wrong")
    with TranscriptionServer(text="ok", api_key=KEY, models=["tiny.en"]) as server:
        remote = build_backend(_spec(server, api_key_env="LASTMILE_TEST_KEY"))
        with pytest.raises(FatalBackendError, match="refused the API key"):
            remote.transcribe(audios[:2])
        monkeypatch.setenv("LASTMILE_TEST_KEY", KEY)
        remote = build_backend(_spec(server, api_key_env="LASTMILE_TEST_KEY", model="large-v9"))
        with pytest.raises(FatalBackendError, match="large-v9.*does not exist"):
            remote.transcribe(audios[:1])
        ok = build_backend(_spec(server, api_key_env="LASTMILE_TEST_KEY"))
        assert ok.transcribe(audios[:1]) == ["ok"]
        url = server.base_url
    # the server is gone: connection refused on every retry
    gone = build_backend(f"openai:{url}?max_retries=1&backoff_s=0")
    with pytest.raises(FatalBackendError, match="cannot connect"):
        gone.transcribe(audios[:1])


def test_spec_is_type_checked_and_the_key_stays_out_of_the_fingerprint(monkeypatch):
    with pytest.raises(ConfigError, match="base URL"):
        build_backend("openai:localhost:8000")
    with pytest.raises(ConfigError, match="concurrency: expected a whole number"):
        build_backend("openai:http://127.0.0.1:9/v1?concurrency=abc")
    with pytest.raises(ConfigError, match=r"temperature: expected a number in \[0, 1\]"):
        build_backend("openai:http://127.0.0.1:9/v1?temperature=3")
    with pytest.raises(ConfigError, match="unknown parameter"):
        build_backend("openai:http://127.0.0.1:9/v1?beam=5")
    with pytest.raises(ConfigError, match="sample_format: expected pcm16 .* or float32"):
        build_backend("openai:http://127.0.0.1:9/v1?sample_format=mp3")
    monkeypatch.delenv("LASTMILE_NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="LASTMILE_NO_SUCH_KEY is not set"):
        build_backend("openai:http://127.0.0.1:9/v1?api_key_env=LASTMILE_NO_SUCH_KEY")
    monkeypatch.setenv("LASTMILE_TEST_KEY", KEY)
    a = build_backend("openai:http://127.0.0.1:9/v1?api_key_env=LASTMILE_TEST_KEY")
    b = build_backend("openai:http://127.0.0.1:9/v1?model_version=2025-01-01")
    c = build_backend("openai:http://127.0.0.1:9/v1?concurrency=32&max_rps=5")
    assert KEY not in a.fingerprint() and KEY not in repr(a)
    assert a.fingerprint() != b.fingerprint()  # a pinned version is part of the key
    assert a.fingerprint() == c.fingerprint()  # pacing does not change transcripts


def test_retry_after_header_forms():
    assert retry_after_s("3") == 3.0
    assert retry_after_s("0.5") == 0.5
    assert retry_after_s(None) is None and retry_after_s("soon") is None
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert retry_after_s(date, now=1445412480.0 - 10) == pytest.approx(10.0)


def test_rate_limiter_paces_requests():
    limiter = RateLimiter(50.0)
    t0 = time.perf_counter()
    for _ in range(11):
        limiter.acquire()
    assert time.perf_counter() - t0 >= 0.19  # 10 intervals of 20 ms
    free = RateLimiter(0.0)
    t0 = time.perf_counter()
    for _ in range(1000):
        free.acquire()
    assert time.perf_counter() - t0 < 0.1


def test_max_rps_is_applied_to_real_requests(audios):
    with TranscriptionServer(text="x") as server:
        remote = build_backend(_spec(server, concurrency=8, max_rps=20))
        t0 = time.perf_counter()
        remote.transcribe([np.zeros(1600, dtype=np.float32)] * 9)
        elapsed = time.perf_counter() - t0
    assert elapsed >= 0.39  # 8 intervals of 50 ms, whatever the concurrency


def test_concurrency_keeps_requests_in_flight(tmp_path: Path):
    silence = [np.zeros(1600, dtype=np.float32)] * 8
    with TranscriptionServer(text="x", latency_s=0.25) as server:
        serial = build_backend(_spec(server, concurrency=1))
        t0 = time.perf_counter()
        serial.transcribe(silence[:4])
        one = time.perf_counter() - t0
        wide = build_backend(_spec(server, concurrency=8))
        wide.transcribe(silence)  # connections opened and the client's imports done
        t0 = time.perf_counter()
        wide.transcribe(silence)
        eight = time.perf_counter() - t0
    assert one >= 1.0  # 4 × 0.25 s one after another
    assert eight < 1.0  # 8 × 0.25 s at once: one after another would take 2 s
