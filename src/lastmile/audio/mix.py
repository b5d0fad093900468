"""Mixing speech and noise at a target SNR (see shared DESIGN, "SNR").

``snr_db = L_active(speech) − L_rms(noise segment added)``: the speech level is the ITU-T P.56
active level of the clean utterance, so pauses do not dilute it; the noise level is the plain
RMS level of exactly the samples added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lastmile.audio.io import validate_audio
from lastmile.audio.levels import active_speech_level, rms_dbfs
from lastmile.errors import AudioError, ConfigError

__all__ = ["MixResult", "mix_at_snr"]


@dataclass(frozen=True)
class MixResult:
    """A mix and everything needed to replay and audit it.

    ``speech`` and ``noise`` are exactly the two arrays whose sum is ``mix`` (after the noise
    gain and any clip gain), float32, shape ``(n,)``. ``speech_level_dbfs`` is the P.56 active
    level of the clean speech as given; ``noise_level_dbfs`` the RMS level of ``noise``.
    ``clip_gain_db`` is the gain (≤ 0) applied to speech and noise alike so the mix stays
    under the peak limit; 0.0 when none was needed.
    """

    mix: np.ndarray
    speech: np.ndarray
    noise: np.ndarray
    speech_level_dbfs: float
    noise_level_dbfs: float
    target_snr_db: float
    achieved_snr_db: float
    noise_gain_db: float
    clip_gain_db: float


def _gain_db_between(scaled: np.ndarray, original: np.ndarray) -> float:
    """The gain that turned ``original`` into ``scaled``, measured from the two arrays."""
    return rms_dbfs(scaled) - rms_dbfs(original)


def mix_at_snr(
    speech: np.ndarray,
    noise: np.ndarray,
    *,
    snr_db: float,
    sample_rate: int,
    peak_limit: float = 0.99,
    speech_level_dbfs: float | None = None,
) -> MixResult:
    """Add ``noise`` to ``speech`` (both float32, shape ``(n,)``) at ``snr_db``.

    The noise is scaled so that ``L_active(speech) − L_rms(noise) = snr_db``. When the mix
    would peak above ``peak_limit`` the whole mix (speech and noise alike) is scaled down, so
    the SNR is kept, and the gain is recorded in ``clip_gain_db``.

    ``achieved_snr_db`` is measured back from the arrays actually added: the noise level is the
    RMS of the scaled noise, and the speech level is the P.56 level of the clean speech plus
    the gain measured between the clean and the added speech. (Re-running the P.56 meter on
    scaled speech would move the level by up to ~0.15 dB, because the meter's thresholds sit
    on a fixed 6 dB ladder; a gain does not change how active speech is.)

    ``speech_level_dbfs``: the P.56 level of ``speech`` when the caller has already measured
    it (the renderer measures an utterance once for all its conditions); measured otherwise.

    Raises :class:`AudioError` for silent speech, all-zero noise or mismatched lengths and
    :class:`ConfigError` for a non-finite SNR or a peak limit outside (0, 1].
    """
    speech = validate_audio(speech, source="mix_at_snr: speech")
    noise = validate_audio(noise, source="mix_at_snr: noise")
    if not math.isfinite(snr_db):
        raise ConfigError(f"mix_at_snr: snr_db must be a finite number of dB, got {snr_db}")
    if not 0.0 < peak_limit <= 1.0:
        raise ConfigError(f"mix_at_snr: peak_limit must be in (0, 1], got {peak_limit}")
    if noise.shape != speech.shape:
        raise AudioError(
            f"mix_at_snr: noise has {noise.size} samples but speech has {speech.size}; "
            "render or cut the noise segment to the utterance's length"
        )

    if speech_level_dbfs is None:
        speech_level_dbfs = active_speech_level(speech, sample_rate=sample_rate).level_dbfs
    try:
        raw_noise_dbfs = rms_dbfs(noise)
    except AudioError as exc:
        raise AudioError(
            "mix_at_snr: noise is all zero, so no gain can reach the target SNR; "
            "check the noise generator or recording"
        ) from exc

    noise_gain_db = speech_level_dbfs - snr_db - raw_noise_dbfs
    speech64 = speech.astype(np.float64)
    noise64 = noise.astype(np.float64) * 10.0 ** (noise_gain_db / 20.0)
    peak = float(np.max(np.abs(speech64 + noise64)))
    clip_gain_db = 0.0
    if peak > peak_limit:
        clip_gain = peak_limit / peak
        clip_gain_db = 20.0 * math.log10(clip_gain)
        speech64 *= clip_gain
        noise64 *= clip_gain

    speech_out = speech64.astype(np.float32)
    noise_out = noise64.astype(np.float32)
    # Exactly the sum of the two arrays recorded; its peak is peak_limit to float32 rounding.
    mix = speech_out + noise_out

    noise_level_dbfs = rms_dbfs(noise_out)
    added_speech_level_dbfs = speech_level_dbfs + _gain_db_between(speech_out, speech)
    achieved_snr_db = added_speech_level_dbfs - noise_level_dbfs
    return MixResult(
        mix=mix,
        speech=speech_out,
        noise=noise_out,
        speech_level_dbfs=speech_level_dbfs,
        noise_level_dbfs=noise_level_dbfs,
        target_snr_db=float(snr_db),
        achieved_snr_db=achieved_snr_db,
        noise_gain_db=noise_gain_db,
        clip_gain_db=clip_gain_db,
    )
