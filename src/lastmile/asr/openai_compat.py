"""Any server that speaks OpenAI's ``POST /v1/audio/transcriptions``.

OpenAI, Azure OpenAI, Groq, vLLM, speaches/faster-whisper-server, whisper.cpp's server and
LocalAI all accept the same multipart request. The backend is I/O-bound: one process keeps up
to ``concurrency`` requests in flight (threads), paced to ``max_rps`` requests per second.

Spec: ``openai:BASE_URL?model=whisper-1&api_key_env=OPENAI_API_KEY&concurrency=16``. The key is
read from the named environment variable when the backend is built and is never written
anywhere: not in the fingerprint (the cache key), run.json, items or reports.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from lastmile.asr.base import BackendSpec
from lastmile.asr.params import (
    CACHE_SALT_PARAM,
    TEXT,
    Param,
    int_in,
    number_in,
    with_defaults,
)
from lastmile.asr.remote import Outcome, decode_each, wav_bytes
from lastmile.errors import BackendError, ConfigError, FatalBackendError

__all__ = ["OpenAIBackend", "RateLimiter", "retry_after_s"]

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})
_FATAL_STATUS = {
    401: "the server refused the API key (401)",
    403: "the API key may not use this model or endpoint (403)",
    404: "no such endpoint or model (404)",
}


def retry_after_s(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date);
    ``None`` when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class RateLimiter:
    """At most ``max_rps`` acquisitions per second across threads (0: unlimited), spaced
    evenly: each caller takes the next free slot and sleeps until it."""

    def __init__(self, max_rps: float) -> None:
        self.interval_s = 1.0 / max_rps if max_rps > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> None:
        if self.interval_s == 0.0:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval_s
        if slot > now:
            time.sleep(slot - now)


_SUBTYPES = {"pcm16": "PCM_16", "float32": "FLOAT"}
_PARAMS: dict[str, Param] = {
    "model": Param("salt", "a model name the server knows"),
    "api_key_env": Param("str", "the NAME of an environment variable holding the key"),
    "language": TEXT,
    "temperature": number_in(0.0, 1.0),
    "concurrency": int_in(1, 256),
    "max_rps": number_in(0.0, 10_000.0),
    "timeout_s": number_in(0.1, 3600.0),
    "max_retries": int_in(0, 20),
    "backoff_s": number_in(0.0, 60.0),
    "max_backoff_s": number_in(0.0, 600.0),
    "model_version": Param("salt", "a version text the provider publishes"),
    "cache_salt": CACHE_SALT_PARAM,
    "sample_rate": int_in(8000, 48000),
    "sample_format": Param(
        "str",
        "pcm16 (16-bit WAV, what every server takes) or float32 (the rendered samples "
        "exactly, where the server reads float WAV)",
        lambda v: v in _SUBTYPES,
    ),
}
_DEFAULTS: dict[str, Any] = {
    "model": "whisper-1",
    "language": "en",
    "temperature": 0.0,
    "concurrency": 4,
    "max_rps": 0.0,
    "timeout_s": 60.0,
    "max_retries": 5,
    "backoff_s": 0.5,
    "max_backoff_s": 30.0,
    "sample_rate": 16000,
    "sample_format": "pcm16",
}


class OpenAIBackend:
    """``openai:BASE_URL?model=NAME&api_key_env=VAR&concurrency=N&max_rps=R&timeout_s=T``.

    ``BASE_URL`` is the API root that ends before ``/audio/transcriptions`` (for OpenAI
    ``https://api.openai.com/v1``; for a local server ``http://127.0.0.1:8000/v1``).
    Requests ask for ``response_format=json`` at temperature 0 in the pack's ``language``.
    Audio goes as 16-bit WAV (``sample_format=pcm16``, what every server takes, and what a
    deployed client sends) or as float WAV (``float32``: the rendered samples exactly, so a
    server running the same model as a local backend gives the same transcripts).

    Retries: 408/409/425/429/5xx answers, timeouts and dropped connections are retried up to
    ``max_retries`` times with exponential backoff and full jitter (``backoff_s`` doubling, at
    most ``max_backoff_s``), waiting at least what a ``Retry-After`` header asks; then the item
    fails as usual. 401, 403 and 404 stop the run at once (:class:`FatalBackendError`): a wrong
    key, model or URL fails every item the same way. A server that cannot be reached at all
    stops the run too.

    The cache key holds the host and path, the model, the decoding parameters and the
    optional ``model_version`` the user pins: a remote model can change under the same name,
    so pin a version (or set ``cache_salt``) when the provider publishes one.
    """

    name = "openai"
    io_bound = True  # the engine keeps many requests in flight in one process

    def __init__(self, base_url: str, **params: Any) -> None:
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(
                f"openai: expected the API's base URL, e.g. openai:http://127.0.0.1:8000/v1 "
                f"or openai:https://api.openai.com/v1, got {base_url!r}"
            )
        values = with_defaults(self.name, params, _PARAMS, _DEFAULTS)
        self.base_url = base_url.rstrip("/")
        self.endpoint = f"{self.base_url}/audio/transcriptions"
        self.params: dict[str, Any] = values
        self.sample_rate = int(values["sample_rate"])
        self.concurrency = int(values["concurrency"])
        key_env = values["api_key_env"]
        self._api_key: str | None = None
        if key_env is not None:
            key = os.environ.get(key_env)
            if not key:
                raise ConfigError(
                    f"openai: api_key_env={key_env}: the environment variable {key_env} is "
                    f"not set; export {key_env}=... before running (the key is never written "
                    "to results)"
                )
            self._api_key = key
        self._limiter = RateLimiter(values["max_rps"])
        self._client: Any = None
        self._client_lock = threading.Lock()
        # jitter only: which retry waits how long never changes a transcript
        self._jitter = np.random.default_rng(0x1A57)
        self._jitter_lock = threading.Lock()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend({self.base_url!r}, model={self.params['model']!r})"

    @classmethod
    def check(cls) -> str | None:
        from importlib.util import find_spec

        if find_spec("httpx") is None:
            return "httpx is not installed: run `pip install httpx`"
        return None

    @classmethod
    def describe(cls) -> str:
        return "any OpenAI-compatible /v1/audio/transcriptions server: openai:URL?model=NAME"

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> OpenAIBackend:
        return cls(spec.argument or "", **dict(spec.params))

    def fingerprint(self) -> str:
        parts = urlsplit(self.base_url)
        meta = {
            "backend": self.name,
            "endpoint": f"{parts.scheme}://{parts.netloc}{parts.path}",
            "sample_rate": self.sample_rate,
            "sample_format": self.params["sample_format"],
            **{
                k: self.params[k]
                for k in ("model", "language", "temperature", "model_version", "cache_salt")
            },
            "response_format": "json",
        }
        return json.dumps(meta, sort_keys=True, separators=(",", ":"))

    # -- requests --------------------------------------------------------------------------

    def _http(self) -> Any:
        with self._client_lock:
            if self._client is None:
                import httpx

                headers = {"User-Agent": "lastmile"}
                if self._api_key:
                    headers["Authorization"] = f"Bearer {self._api_key}"
                self._client = httpx.Client(
                    headers=headers,
                    timeout=httpx.Timeout(self.params["timeout_s"]),
                    limits=httpx.Limits(
                        max_connections=self.concurrency,
                        max_keepalive_connections=self.concurrency,
                    ),
                )
            return self._client

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _backoff_s(self, attempt: int, retry_after: float | None) -> float:
        cap = min(self.params["max_backoff_s"], self.params["backoff_s"] * 2.0**attempt)
        with self._jitter_lock:
            wait = float(self._jitter.uniform(0.0, cap))
        if retry_after is not None:
            wait = max(wait, retry_after)
        return wait

    def _form(self) -> dict[str, str]:
        form = {
            "model": self.params["model"],
            "response_format": "json",
            "temperature": f"{self.params['temperature']:g}",
        }
        if self.params["language"]:
            form["language"] = self.params["language"]
        return form

    def _request(self, wav: bytes, label: str) -> tuple[str, float, int]:
        """One item's transcript, its latency (s, retries included) and the retries used."""
        import httpx

        client = self._http()
        t0 = time.perf_counter()
        last = ""
        for attempt in range(self.params["max_retries"] + 1):
            self._limiter.acquire()
            retry_after = None
            try:
                response = client.post(
                    self.endpoint,
                    data=self._form(),
                    files={"file": (f"{label}.wav", wav, "audio/wav")},
                )
            except httpx.ConnectError as exc:
                last = f"cannot connect to {self.base_url} ({exc})"
                if attempt >= self.params["max_retries"]:
                    raise FatalBackendError(
                        f"openai: {last}; check that the server is running and the URL is "
                        "right (openai:http://HOST:PORT/v1)"
                    ) from None
            except httpx.TimeoutException:
                last = f"no answer within timeout_s={self.params['timeout_s']:g}"
            except httpx.TransportError as exc:
                last = f"connection dropped ({type(exc).__name__}: {exc})"
            else:
                status = response.status_code
                if status in _FATAL_STATUS:
                    raise FatalBackendError(
                        f"openai: {self.endpoint}: {_FATAL_STATUS[status]}: "
                        f"{_server_message(response)}; check api_key_env, model and the URL"
                    )
                if status == 200:
                    return _parse_text(response, label), time.perf_counter() - t0, attempt
                if status not in _RETRY_STATUS:
                    raise BackendError(
                        f"openai: {label}: the server answered {status}: "
                        f"{_server_message(response)}"
                    )
                last = f"HTTP {status}: {_server_message(response)}"
                retry_after = retry_after_s(response.headers.get("retry-after"))
            if attempt < self.params["max_retries"]:
                time.sleep(self._backoff_s(attempt, retry_after))
        raise BackendError(
            f"openai: {label}: gave up after {self.params['max_retries'] + 1} attempts; "
            f"last: {last}; raise max_retries or lower concurrency/max_rps"
        )

    def transcribe_detailed(self, batch: Sequence[np.ndarray]) -> list[Outcome]:
        """Every item of ``batch`` decoded concurrently: a transcript or an error each
        (an item's failure does not fail the others), with its latency."""
        subtype = _SUBTYPES[self.params["sample_format"]]
        wavs = [wav_bytes(a, self.sample_rate, subtype) for a in batch]
        if not wavs:
            return []

        def one(index: int) -> Outcome:
            label = f"item{index}"
            try:
                text, latency, retries = self._request(wavs[index], label)
                return Outcome(text, None, latency, retries)
            except FatalBackendError:
                raise
            except BackendError as exc:
                return Outcome(None, str(exc), None, self.params["max_retries"])

        return decode_each(len(wavs), one, concurrency=self.concurrency, name="openai")

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        outcomes = self.transcribe_detailed(batch)
        for outcome in outcomes:
            if outcome.error is not None:
                raise BackendError(outcome.error)
        return [o.text or "" for o in outcomes]


def _server_message(response: Any) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:200] or "(empty body)"
    if isinstance(data, Mapping):
        err = data.get("error")
        if isinstance(err, Mapping) and err.get("message"):
            return str(err["message"])[:300]
        if isinstance(err, str):
            return err[:300]
        if data.get("detail"):
            return str(data["detail"])[:300]
    return json.dumps(data)[:200]


def _parse_text(response: Any, label: str) -> str:
    try:
        data = response.json()
    except ValueError:
        raise BackendError(
            f"openai: {label}: the server's answer is not JSON "
            f"({response.text.strip()[:80]!r}); is the URL an OpenAI-compatible API?"
        ) from None
    text = data.get("text") if isinstance(data, Mapping) else None
    if not isinstance(text, str):
        raise BackendError(
            f"openai: {label}: the answer has no string 'text' field "
            f"(got {json.dumps(data)[:120]}); the server does not follow the "
            "/audio/transcriptions response format"
        )
    return text.strip()
