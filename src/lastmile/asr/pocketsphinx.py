"""CMU PocketSphinx with the English model its wheel ships. Offline, deterministic."""

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
from lastmile.asr.params import check_params
from lastmile.errors import ConfigError

__all__ = ["PocketSphinxBackend", "to_pcm16"]


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as 16-bit integers, the inverse of reading a 16-bit file as
    floats (``k / 32768``): a 16-bit corpus file reaches the decoder sample for sample."""
    scaled = np.round(np.asarray(audio, dtype=np.float64) * 32768.0)
    return np.clip(scaled, -32768, 32767).astype("<i2")


@cache
def _files_digest(paths: tuple[str, ...], stamp: tuple[tuple[int, int], ...]) -> str:
    del stamp  # part of the cache key only: a changed file is hashed again
    h = hashlib.sha256()
    for name in paths:
        h.update(name.encode())
        with open(name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def _digest(paths: list[Path]) -> str:
    files = sorted(str(p) for p in paths if p.is_file())
    stamp = tuple((Path(f).stat().st_mtime_ns, Path(f).stat().st_size) for f in files)
    return _files_digest(tuple(files), stamp)


class PocketSphinxBackend:
    """``pocketsphinx[:MODEL_DIR]``: the acoustic model folder (default: the wheel's en-us),
    with the wheel's en-us language model and dictionary.

    Everything else is PocketSphinx's own default configuration, as ``pocketsphinx.Decoder()``
    builds it; its log goes to /dev/null. Each utterance is decoded whole
    (``process_raw(..., full_utt=True)``) as 16-bit samples at 16 kHz.
    """

    name = "pocketsphinx"
    sample_rate = 16000

    def __init__(self, model_dir: str | Path | None = None) -> None:
        from pocketsphinx import Config, Decoder

        config = Config()
        config.set_string("-logfn", "/dev/null")
        if model_dir:
            base = Path(model_dir)
            if not (base / "mdef").is_file():
                raise ConfigError(
                    f"pocketsphinx: {base} is not a PocketSphinx acoustic model folder (no "
                    "mdef file); give such a folder or omit it to use the wheel's en-us model"
                )
            config.set_string("-hmm", str(base))
        self.model_dir = str(model_dir) if model_dir else "wheel:en-us"
        self._files = self._model_files(config)
        try:
            self._decoder = Decoder(config)
        except RuntimeError as exc:
            raise ConfigError(f"pocketsphinx: the decoder cannot be built: {exc}") from exc

    @staticmethod
    def _model_files(config: Any) -> list[Path]:
        hmm = Path(config["hmm"])
        files = sorted(p for p in hmm.iterdir() if p.is_file())
        return [*files, Path(config["lm"]), Path(config["dict"])]

    @classmethod
    def check(cls) -> str | None:
        try:
            import pocketsphinx  # noqa: F401
        except ImportError:
            return "pocketsphinx is not installed: run `pip install pocketsphinx`"
        return None

    @classmethod
    def describe(cls) -> str:
        return "CMU PocketSphinx, en-us model from its wheel"

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> PocketSphinxBackend:
        check_params(cls.name, spec.params, {})
        return cls(spec.argument)

    def fingerprint(self) -> str:
        return json.dumps(
            {
                "backend": self.name,
                "model": self.model_dir,
                "model_files": _digest(self._files),
                "version": version("pocketsphinx"),
                "pcm": "round",  # before: truncated, one step off on most samples
            },
            sort_keys=True,
        )

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        out = []
        for audio in batch:
            self._decoder.start_utt()
            self._decoder.process_raw(to_pcm16(audio).tobytes(), full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            out.append(hyp.hypstr if hyp is not None else "")
        return out
