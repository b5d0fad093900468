"""CMU PocketSphinx with the English model its wheel ships. Offline, deterministic."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from lastmile.asr.base import BackendSpec
from lastmile.asr.params import CACHE_SALT_PARAM, check_params
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
        h.update(Path(name).name.encode())
        with open(name, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def _digest(paths: list[Path]) -> str:
    """A digest of the files' names and contents (not their folder: a copy of a model has
    the same digest)."""
    files = tuple(str(p) for p in paths if p.is_file())
    stamp = tuple((Path(f).stat().st_mtime_ns, Path(f).stat().st_size) for f in files)
    return _files_digest(files, stamp)


_PARAMS = {"cache_salt": CACHE_SALT_PARAM}

_PROBE = "import sys\nfrom pocketsphinx import Decoder\nDecoder(hmm=sys.argv[1])\n"


@cache
def _probe(model_dir: str, digest: str) -> str | None:
    """Why PocketSphinx cannot build a decoder from ``model_dir``, or None. Tried in a child
    process: on a malformed model PocketSphinx ends the whole process (exit status 1, a FATAL
    line on standard error) instead of raising."""
    del digest  # part of the cache key: a changed model is tried again
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, model_dir],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "building a decoder from it took longer than 300 s"
    if done.returncode == 0:
        return None
    lines = [ln.strip() for ln in done.stderr.splitlines() if ln.startswith(("ERROR", "FATAL"))]
    return " ".join(lines) or done.stderr.strip()[-300:] or f"exit status {done.returncode}"


class PocketSphinxBackend:
    """``pocketsphinx[:MODEL_DIR]``: the acoustic model folder (default: the wheel's en-us),
    with the wheel's en-us language model and dictionary.

    Everything else is PocketSphinx's own default configuration, as ``pocketsphinx.Decoder()``
    builds it. A model folder is first tried in a child process (a malformed one makes
    PocketSphinx end the process it runs in). Each utterance is decoded whole
    (``process_raw(..., full_utt=True)``) as 16-bit samples at 16 kHz.
    """

    name = "pocketsphinx"
    sample_rate = 16000

    def __init__(self, model_dir: str | Path | None = None, *, cache_salt: str | None = None):
        from pocketsphinx import Config, Decoder

        salt = {} if cache_salt is None else {"cache_salt": cache_salt}
        self.cache_salt = check_params(self.name, salt, _PARAMS).get("cache_salt")

        config = Config()
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
        if model_dir:
            problem = _probe(str(model_dir), _digest(self._files))
            if problem is not None:
                raise ConfigError(
                    f"pocketsphinx: {model_dir}: no decoder can be built from this model "
                    f"folder: {problem}"
                )
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
        params = check_params(cls.name, spec.params, _PARAMS)
        return cls(spec.argument, **params)

    def fingerprint(self) -> str:
        return json.dumps(
            {
                "backend": self.name,
                "model_files": _digest(self._files),
                "version": version("pocketsphinx"),
                "pcm": "round",  # before: truncated, one step off on most samples
                **({"cache_salt": self.cache_salt} if self.cache_salt is not None else {}),
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
