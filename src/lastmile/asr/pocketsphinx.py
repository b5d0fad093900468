"""CMU PocketSphinx with the English model its wheel ships. Offline, deterministic."""

from __future__ import annotations

import json
from collections.abc import Sequence
from importlib.metadata import version

import numpy as np

from lastmile.asr.base import BackendSpec
from lastmile.errors import ConfigError

__all__ = ["PocketSphinxBackend"]


class PocketSphinxBackend:
    """``pocketsphinx[:MODEL_DIR]`` (defaults to the wheel's en-us model)."""

    name = "pocketsphinx"
    sample_rate = 16000

    def __init__(self, model_dir: str | None = None) -> None:
        from pocketsphinx import Config, Decoder

        config = Config()
        config.set_string("-logfn", "/dev/null")
        if model_dir:
            from pathlib import Path

            base = Path(model_dir)
            if not base.is_dir():
                raise ConfigError(f"pocketsphinx: model folder {base} not found")
            config.set_string("-hmm", str(base))
        self.model_dir = model_dir or "wheel:en-us"
        self._decoder = Decoder(config)

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
        if spec.params:
            raise ConfigError(f"pocketsphinx: takes no parameters, got {sorted(spec.params)}")
        return cls(spec.argument)

    def fingerprint(self) -> str:
        return json.dumps(
            {"backend": self.name, "model": self.model_dir, "version": version("pocketsphinx")},
            sort_keys=True,
        )

    def transcribe(self, batch: Sequence[np.ndarray]) -> list[str]:
        out = []
        for audio in batch:
            pcm = (np.clip(audio, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
            self._decoder.start_utt()
            self._decoder.process_raw(pcm, full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
            out.append(hyp.hypstr if hyp is not None else "")
        return out
