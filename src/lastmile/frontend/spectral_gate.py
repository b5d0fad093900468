"""Spectral gate: ``noisereduce`` (extra ``lastmile[frontends]``), imported when first used."""

from __future__ import annotations

from typing import Any

import numpy as np

from lastmile.audio import validate_audio
from lastmile.errors import ConfigError
from lastmile.frontend.specs import SpectralGateSpec

__all__ = ["INSTALL_HINT", "SpectralGate"]

INSTALL_HINT = "pip install 'lastmile[frontends]' (or: pip install noisereduce)"


def _reduce_noise() -> Any:
    try:
        from noisereduce import reduce_noise
    except ImportError as exc:
        raise ConfigError(
            f"frontend spectral-gate needs the noisereduce package, which is not installed "
            f"({exc}); {INSTALL_HINT}"
        ) from exc
    return reduce_noise


class SpectralGate:
    """``noisereduce.reduce_noise`` on one utterance, on one thread, without torch.

    The noise estimate comes from the utterance itself (no separate noise clip): stationary,
    a per-frequency threshold from the whole utterance; otherwise one that follows the noise.
    Deterministic: noisereduce draws nothing at random.
    """

    name = "spectral-gate"

    def __init__(self, spec: SpectralGateSpec):
        self.spec = spec
        self._fn = _reduce_noise()  # a missing extra fails when the pack is checked

    def describe(self) -> dict[str, Any]:
        return self.spec.model_dump(mode="json")

    def apply(self, audio: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """``audio`` (shape ``(n,)``, float32) gated; same shape."""
        audio = validate_audio(audio, source="spectral-gate")
        out = self._fn(
            y=audio.astype(np.float32),
            sr=int(sample_rate),
            stationary=self.spec.stationary,
            prop_decrease=self.spec.prop_decrease,
            n_std_thresh_stationary=self.spec.n_std_thresh,
            n_jobs=1,
            use_torch=False,
            use_tqdm=False,
        )
        out = np.ascontiguousarray(np.asarray(out, dtype=np.float32).reshape(-1))
        if out.size != audio.size:  # noisereduce keeps the length; refuse if it ever did not
            raise ConfigError(
                f"spectral-gate: noisereduce returned {out.size} samples for {audio.size}; "
                "this version of noisereduce is not supported"
            )
        return out
