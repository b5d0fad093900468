"""An OpenAI-compatible transcription server on the loopback interface, for tests and
benchmarks of remote backends (and for users who want to try the ``openai`` backend offline).

It answers ``POST /v1/audio/transcriptions`` by decoding the uploaded WAV with a real lastmile
backend (default: the shipped Whisper tiny.en), so transcripts are real. Faults can be queued
to test clients: each request takes the next fault off the queue.

Example::

    with TranscriptionServer(faults=["429", "500"]) as server:
        backend = build_backend(f"openai:{server.base_url}?model=tiny.en")
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import soundfile as sf

__all__ = ["FAULTS", "TranscriptionServer"]

#: what a queued fault does to one request
FAULTS = {
    "429": "429 Too Many Requests with Retry-After: 0.2",
    "500": "500 Internal Server Error",
    "503": "503 Service Unavailable without Retry-After",
    "slow": "answers only after the server's slow_s (past a short client timeout)",
    "drop": "closes the connection without an answer",
    "badjson": "200 with a body that is not JSON",
    "notext": "200 with JSON whose 'text' is not a string",
    "401": "401 Unauthorized",
}


class TranscriptionServer:
    """A threaded HTTP server on 127.0.0.1 (a free port) speaking the OpenAI route.

    ``backend``: a lastmile backend (built lazily from ``"faster-whisper"`` when ``None``) or
    ``text`` for a fixed transcript without decoding; every answer leaves ``latency_s`` after
    its request arrived (reading, parsing and decoding included) or when its work is done;
    ``api_key`` requires ``Authorization: Bearer KEY``; ``models`` the accepted model names
    (any when ``None``); ``faults`` queued fault names (see :data:`FAULTS`).
    ``requests`` lists ``(status, model, fault)`` per request received.
    """

    def __init__(
        self,
        *,
        backend: Any = None,
        text: str | None = None,
        latency_s: float = 0.0,
        api_key: str | None = None,
        models: Iterable[str] | None = None,
        faults: Iterable[str] = (),
        slow_s: float = 2.0,
    ) -> None:
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError(f"unknown fault(s) {unknown}; known: {sorted(FAULTS)}")
        self._backend = backend
        self._text = text
        self.latency_s = float(latency_s)
        self.api_key = api_key
        self.models = None if models is None else set(models)
        self.slow_s = float(slow_s)
        self._faults: deque[str] = deque(faults)
        self._lock = threading.Lock()
        self._decode_lock = threading.Lock()
        self.requests: list[tuple[int, str, str | None]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> TranscriptionServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        handler = _handler_for(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="lastmile-test-server", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the server is not running: use it as a context manager")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def queue(self, *faults: str) -> None:
        """Queue more faults for the next requests."""
        with self._lock:
            self._faults.extend(faults)

    # -- work ------------------------------------------------------------------------------

    def _next_fault(self) -> str | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def _record(self, status: int, model: str, fault: str | None) -> None:
        with self._lock:
            self.requests.append((status, model, fault))

    def transcribe(self, wav: bytes) -> str:
        if self._text is not None:
            return self._text
        audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
        if audio.ndim != 1:
            audio = audio.mean(axis=1)
        with self._decode_lock:
            if self._backend is None:
                from lastmile.asr import build_backend

                self._backend = build_backend("faster-whisper")
            if rate != self._backend.sample_rate:
                from lastmile.audio import resample

                audio = resample(
                    audio, orig_sample_rate=rate, sample_rate=self._backend.sample_rate
                )
            return str(self._backend.transcribe([np.asarray(audio, dtype=np.float32)])[0])


def _handler_for(server: TranscriptionServer) -> Callable[..., BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: bytes, *, headers: dict[str, str] | None = None):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up
                self.close_connection = True

        def _error(self, status: int, message: str, **headers: str) -> None:
            body = json.dumps({"error": {"message": message, "code": status}}).encode()
            self._send(status, body, headers=headers)

        def do_POST(self) -> None:
            t0 = time.perf_counter()  # latency_s counts from the request's arrival
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if not self.path.rstrip("/").endswith("/v1/audio/transcriptions"):
                server._record(404, "", None)
                self._error(404, f"no route {self.path}")
                return
            form = _multipart(self.headers.get("Content-Type", ""), body)
            model = form.get("model", b"").decode()
            fault = server._next_fault()
            if fault == "drop":
                server._record(0, model, fault)
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if server.api_key is not None and (
                self.headers.get("Authorization") != f"Bearer {server.api_key}" or fault == "401"
            ):
                server._record(401, model, fault)
                self._error(401, "Incorrect API key provided")
                return
            if fault == "401":
                server._record(401, model, fault)
                self._error(401, "Incorrect API key provided")
                return
            if server.models is not None and model not in server.models:
                server._record(404, model, fault)
                self._error(404, f"The model '{model}' does not exist")
                return
            if fault in ("429", "500", "503"):
                status = int(fault)
                server._record(status, model, fault)
                extra = {"Retry-After": "0.2"} if status == 429 else {}
                self._error(status, FAULTS[fault], **extra)
                return
            if "file" not in form:
                server._record(400, model, fault)
                self._error(400, "no 'file' part in the form")
                return
            if fault == "slow":
                time.sleep(server.slow_s)
            text = server.transcribe(form["file"])
            rest = server.latency_s - (time.perf_counter() - t0)
            if rest > 0:
                time.sleep(rest)
            server._record(200, model, fault)
            if fault == "badjson":
                self._send(200, b"<html>upstream error</html>")
            elif fault == "notext":
                self._send(200, json.dumps({"text": 5}).encode())
            else:
                self._send(200, json.dumps({"text": text}).encode())

    return Handler


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The parts of a multipart/form-data body by field name."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
    )
    out: dict[str, bytes] = {}
    if not message.is_multipart():
        return out
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str):
            out[name] = payload if isinstance(payload, bytes) else b""
    return out
