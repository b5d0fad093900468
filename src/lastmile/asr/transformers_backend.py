"""Hugging Face speech models from a local folder: CTC (wav2vec2, HuBERT, WavLM, ...) and
Whisper (sequence to sequence), greedy and offline.

Spec: ``transformers:/path/to/model?batch_size=8&device=cpu``. The folder is what
``save_pretrained`` writes (``config.json``, the weights, the feature extractor's and the
tokenizer's files). Nothing is downloaded: every file is read with ``local_files_only=True``,
and a spec that names a Hub model instead of a folder is refused.

The model and its processor are used directly rather than through
``pipeline("automatic-speech-recognition")``: measured with transformers 5.25, the pipeline
decodes the padding frames of the shorter items in a batch of a CTC model (a 1 s item batched
with a 3 s one came back 9 characters longer than decoded alone), so a transcript would
depend on its batch mates. Here items are grouped so that none is ever padded for another:
CTC items by their exact length, Whisper items by their token cap (Whisper pads every window
to 30 s anyway), so a transcript never depends on the batch it was decoded in.

Needs the extra ``pip install "lastmile[transformers]"`` (torch and transformers); both are
imported when the first item is decoded, so a fully cached run never loads them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from lastmile.asr.base import BackendSpec
from lastmile.asr.faster_whisper import LOOP_CAP_FLOOR, MIN_TOKENS_PER_S
from lastmile.asr.params import CACHE_SALT_PARAM, TEXT, Param, int_in, one_of, with_defaults
from lastmile.errors import ConfigError, FatalBackendError

__all__ = ["INSTALL_HINT", "TransformersBackend", "model_digest"]

INSTALL_HINT = 'pip install "lastmile[transformers]"'
_WHISPER_WINDOW_S = 30.0  # Whisper's input window; longer items use long-form generation
_DTYPES = ("float32", "float16", "bfloat16")


_PARAMS: dict[str, Param] = {
    "batch_size": int_in(1, 1024),
    "device": TEXT,
    "dtype": one_of(*_DTYPES),
    "cpu_threads": int_in(1, 256),
    "language": TEXT,
    "max_tokens_per_s": Param(
        "number",
        f"0 (no cap but the model's own) or a number in [{MIN_TOKENS_PER_S:g}, 100]",
        lambda v: v == 0 or MIN_TOKENS_PER_S <= v <= 100,
    ),
    "cache_salt": CACHE_SALT_PARAM,
}
_DEFAULTS: dict[str, Any] = {
    "batch_size": 8,
    "device": "cpu",
    "dtype": "float32",
    "cpu_threads": 1,
    "language": "en",
    "max_tokens_per_s": 15.0,
}


def _check_device(device: str) -> str:
    head, _, index = device.partition(":")
    if head == "cpu" and not index:
        return device
    if head == "cuda" and (not index or index.isdigit()):
        return device
    raise ConfigError(
        f"transformers: device: expected cpu, cuda or cuda:N (N a GPU index), got {device!r}"
    )


def _missing_extra() -> str | None:
    from importlib.util import find_spec

    missing = [name for name in ("torch", "transformers") if find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed: run `{INSTALL_HINT}`"
    return None


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


_DIGESTS: dict[tuple[Any, ...], str] = {}


def model_digest(model_dir: Path) -> str:
    """sha256 over the name and content of every file in the model folder (hidden files and
    folders skipped, symlinks followed, as in a Hub cache snapshot). Remembered per process
    by each file's size and modification time, so a changed file is read again."""
    files = sorted(
        p
        for p in model_dir.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(model_dir).parts)
    )
    key: tuple[Any, ...] = (str(model_dir),)
    for path in files:
        st = path.stat()
        key += ((path.relative_to(model_dir).as_posix(), st.st_size, st.st_mtime_ns),)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        for path in files:
            h.update(path.relative_to(model_dir).as_posix().encode() + b"\0")
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            h.update(b"\0")
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"transformers: {path}: cannot read it as JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"transformers: {path}: expected a JSON object")
    return data


def _model_kind(model_dir: Path, config: dict[str, Any]) -> str:
    """``ctc`` or ``whisper``, from ``config.json``'s architectures and model type."""
    archs = config.get("architectures") or []
    if config.get("model_type") == "whisper":
        return "whisper"
    if any(str(a).endswith("ForCTC") for a in archs):
        return "ctc"
    raise ConfigError(
        f"transformers: {model_dir}: config.json describes {archs or config.get('model_type')!r}; "
        "this backend decodes CTC models (architectures ending in ForCTC: wav2vec2, HuBERT, "
        "WavLM, ...) and Whisper (model_type whisper). Save the model with save_pretrained "
        "from one of those classes"
    )


class TransformersBackend:
    """``transformers:MODEL_DIR[?batch_size=8&device=cpu&dtype=float32&cpu_threads=1]``.

    ``MODEL_DIR`` is a local folder written by ``save_pretrained`` (or a Hub cache snapshot
    folder). Decoding is greedy: CTC takes the best label per frame; Whisper generates with
    ``num_beams=1``, ``do_sample=False``, temperature 0 without fallback and without
    conditioning on the previous window, in ``language`` for a multilingual model (an
    English-only model is given no language). Whisper items longer than 30 s go through the
    model's long-form generation (window by window, seeking by the predicted timestamps), so
    nothing is cut. Like the faster-whisper backend, Whisper output is capped at
    ``max_tokens_per_s`` generated tokens per second of audio (+ 16, per 30 s window; default
    15, three times fast speech, at least 10; 0: the model's own limit) so one looping item
    adds tens of insertions rather than hundreds; generate()'s ``max_new_tokens`` counts
    exactly the tokens generated.

    ``device``: cpu, cuda or cuda:N; ``dtype``: float32 (default), float16 or bfloat16;
    ``cpu_threads``: torch's intra-op threads while decoding (restored afterwards).
    ``batch_size``: at most this many items per forward pass.

    The fingerprint (cache key) holds a digest of every file in the model folder, the
    versions of torch, transformers and tokenizers, the device type, dtype and decoding
    parameters (and ``cache_salt`` if set).
    """

    name = "transformers"
    preload_modules = ("torch", "transformers")  # imported by the worker fork server

    def __init__(self, model_dir: str | Path | None, **params: Any) -> None:
        if not model_dir:
            raise ConfigError(
                "transformers: expected a local model folder, e.g. "
                "transformers:/models/wav2vec2-base-960h (a folder written by save_pretrained)"
            )
        path = Path(os.path.expanduser(str(model_dir)))
        if not path.is_dir():
            raise ConfigError(
                f"transformers: {model_dir}: not a folder. This backend never downloads: "
                "fetch the model once (e.g. `huggingface-cli download NAME --local-dir DIR`) "
                "and give its local folder"
            )
        if not (path / "config.json").is_file():
            raise ConfigError(
                f"transformers: {path}: no config.json; give the folder that save_pretrained "
                "wrote (config.json, the weights, preprocessor_config.json, tokenizer files)"
            )
        values = with_defaults(self.name, params, _PARAMS, _DEFAULTS)
        values["device"] = _check_device(values["device"])
        config = _read_json(path / "config.json")
        self.kind = _model_kind(path, config)
        self.model_dir = path
        self.params: dict[str, Any] = values
        self.sample_rate = self._sampling_rate(path)
        self._loaded: tuple[Any, Any, Any] | None = None

    @staticmethod
    def _sampling_rate(path: Path) -> int:
        pre = path / "preprocessor_config.json"
        if not pre.is_file():
            raise ConfigError(
                f"transformers: {path}: no preprocessor_config.json; save the model's feature "
                "extractor (or processor) into the folder with save_pretrained"
            )
        rate = _read_json(pre).get("sampling_rate")
        if not isinstance(rate, int) or isinstance(rate, bool) or not 1000 <= rate <= 192_000:
            raise ConfigError(
                f"transformers: {pre}: sampling_rate: expected a whole number of Hz, got {rate!r}"
            )
        return rate

    def __repr__(self) -> str:
        return f"TransformersBackend({str(self.model_dir)!r}, kind={self.kind!r})"

    @classmethod
    def check(cls) -> str | None:
        return _missing_extra()

    @classmethod
    def describe(cls) -> str:
        return "Hugging Face CTC or Whisper model from a local folder: transformers:DIR"

    @classmethod
    def from_spec(cls, spec: BackendSpec) -> TransformersBackend:
        return cls(spec.argument, **dict(spec.params))

    def fingerprint(self) -> str:
        device = self.params["device"].partition(":")[0]
        meta = {
            "backend": self.name,
            "kind": self.kind,
            "model": model_digest(self.model_dir),
            "torch": _version("torch"),
            "transformers": _version("transformers"),
            "tokenizers": _version("tokenizers"),
            "device": device,  # which GPU does not matter; GPU against CPU may
            "dtype": self.params["dtype"],
            "sample_rate": self.sample_rate,
            "decoding": "greedy",
            "cache_salt": self.params["cache_salt"],
        }
        if self.kind == "whisper":
            meta["language"] = self.params["language"]
            meta["max_tokens_per_s"] = self.params["max_tokens_per_s"]
        return json.dumps(meta, sort_keys=True, separators=(",", ":"))

    # -- loading ---------------------------------------------------------------------------

    def _load(self) -> tuple[Any, Any, Any]:
        """(model, feature extractor, tokenizer), loaded once; FatalBackendError when that
        fails, since every item would fail the same way."""
        if self._loaded is not None:
            return self._loaded
        try:
            import torch
            import transformers
        except ImportError as exc:
            raise FatalBackendError(
                f"transformers: cannot import torch and transformers ({exc}); run `{INSTALL_HINT}`"
            ) from None
        device = self.params["device"]
        if device.startswith("cuda"):
            index = int(device.partition(":")[2] or 0)
            count = torch.cuda.device_count() if torch.cuda.is_available() else 0
            if index >= count:
                fix = (
                    f"use device=cuda:0 to cuda:{count - 1}"
                    if count
                    else "use device=cpu or install a CUDA build of torch"
                )
                raise FatalBackendError(
                    f"transformers: device={device}: no such CUDA device here "
                    f"(torch {torch.__version__} sees {count} GPU(s)); {fix}"
                )
        auto = (
            transformers.AutoModelForCTC
            if self.kind == "ctc"
            else transformers.AutoModelForSpeechSeq2Seq
        )
        where = str(self.model_dir)
        try:
            model = auto.from_pretrained(where, local_files_only=True, trust_remote_code=False)
            features = transformers.AutoFeatureExtractor.from_pretrained(
                where, local_files_only=True, trust_remote_code=False
            )
            tokenizer = transformers.AutoTokenizer.from_pretrained(
                where, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FatalBackendError(
                f"transformers: {where}: cannot load the model, feature extractor and "
                f"tokenizer ({type(exc).__name__}: {str(exc)[:300]}); save all three into the "
                "folder with save_pretrained"
            ) from None
        model = model.to(device=device, dtype=getattr(torch, self.params["dtype"])).eval()
        self._loaded = (model, features, tokenizer)
        return self._loaded

    # -- decoding --------------------------------------------------------------------------

    def _groups(self, batch: Sequence[np.ndarray]) -> list[list[int]]:
        """Indices of ``batch`` in the order decoded: items that can share a forward pass
        without padding one for another, at most ``batch_size`` each."""
        keys: dict[Any, list[int]] = {}
        for i, audio in enumerate(batch):
            if self.kind == "ctc":
                key: Any = int(audio.size)
            else:
                long_form = audio.size > _WHISPER_WINDOW_S * self.sample_rate
                # long-form items are decoded alone: a batch would pad them to the longest
                key = ("long", i) if long_form else ("short", self._token_cap(audio.size))
            keys.setdefault(key, []).append(i)
        size = self.params["batch_size"]
        return [idx[k : k + size] for idx in keys.values() for k in range(0, len(idx), size)]

    def _token_cap(self, n_samples: int) -> int | None:
        per_s = self.params["max_tokens_per_s"]
        if per_s <= 0:
            return None
        window_s = min(n_samples / self.sample_rate, _WHISPER_WINDOW_S)
        return math.ceil(per_s * window_s) + LOOP_CAP_FLOOR

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        """One transcript per float32 mono array at ``sample_rate``."""
        if not batch:
            return []
        import torch

        model, features, tokenizer = self._load()
        audios = [np.ascontiguousarray(a, dtype=np.float32) for a in batch]
        out: list[str] = [""] * len(audios)
        from transformers.utils import logging as hf_logging

        threads = torch.get_num_threads()
        verbosity = hf_logging.get_verbosity()
        torch.set_num_threads(self.params["cpu_threads"])
        # generate() warns on every call about settings we pass on purpose (max_new_tokens
        # beside the model's max_length): keep them off the run's progress display
        hf_logging.set_verbosity_error()
        try:
            with torch.inference_mode():
                for group in self._groups(audios):
                    chunk = [audios[i] for i in group]
                    if self.kind == "ctc":
                        texts = self._ctc(model, features, tokenizer, chunk)
                    else:
                        texts = self._whisper(model, features, tokenizer, chunk)
                    for i, text in zip(group, texts, strict=True):
                        out[i] = text
        finally:
            torch.set_num_threads(threads)
            hf_logging.set_verbosity(verbosity)
        return out

    def _inputs(self, tensor: Any, model: Any) -> Any:
        return tensor.to(device=model.device, dtype=model.dtype)

    def _ctc(self, model: Any, features: Any, tokenizer: Any, chunk: list[np.ndarray]) -> list[str]:
        # every item of a group has the same length: no padding, no attention mask needed
        inputs = features(chunk, sampling_rate=self.sample_rate, return_tensors="pt")
        logits = model(self._inputs(inputs.input_values, model)).logits
        ids = logits.argmax(dim=-1).cpu()
        return [str(t).strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]

    def _whisper(
        self, model: Any, features: Any, tokenizer: Any, chunk: list[np.ndarray]
    ) -> list[str]:
        gen = model.generation_config
        long_form = chunk[0].size > _WHISPER_WINDOW_S * self.sample_rate
        if long_form:
            inputs = features(
                chunk,
                sampling_rate=self.sample_rate,
                return_tensors="pt",
                truncation=False,
                padding="longest",
                return_attention_mask=True,
            )
        else:
            inputs = features(
                chunk,
                sampling_rate=self.sample_rate,
                return_tensors="pt",
                return_attention_mask=True,
            )
        kwargs: dict[str, Any] = {
            "num_beams": 1,
            "do_sample": False,
            "temperature": 0.0,
            "attention_mask": inputs.attention_mask.to(model.device),
        }
        cap = self._token_cap(chunk[0].size)
        if cap is not None:
            limit = getattr(gen, "max_length", None) or model.config.max_target_positions
            kwargs["max_new_tokens"] = min(cap, int(limit) - 4)  # the prompt's 4 tokens
        if getattr(gen, "is_multilingual", False) and self.params["language"]:
            kwargs["language"] = self.params["language"]
            kwargs["task"] = "transcribe"
        if long_form:
            kwargs["return_timestamps"] = True
            kwargs["condition_on_prev_tokens"] = False
        generated = model.generate(self._inputs(inputs.input_features, model), **kwargs)
        sequences = generated if not hasattr(generated, "sequences") else generated.sequences
        ids = sequences.cpu().tolist()
        # timestamp tokens follow <|notimestamps|>: not text
        no_ts = getattr(gen, "no_timestamps_token_id", None)
        if no_ts is not None:
            ids = [[t for t in row if t < no_ts] for row in ids]
        return [str(t).strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
