"""The device profile file (``kind: device``, ``schema_version: 1``) and its render-time filter.

A device profile holds a handset's or microphone's measured magnitude response (a 1/12-octave
table, normalised to 0 dB at the reference frequency), its usable band, noise floor,
harmonic distortion (sweep method) or coherence (reference-microphone method). At render
time a **minimum-phase FIR** is rebuilt from the table, deterministically, at whatever rate
it is applied (cepstral method): the file stays small and readable, and the filter adds no
more delay than the device's own minimum phase.

The JSON Schema is ``lastmile/schemas/device_profile.schema.json``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator
from scipy.signal import fftconvolve

from lastmile.audio.io import validate_audio
from lastmile.errors import ConfigError
from lastmile.profiles.files import (
    atomic_write_text,
    dump_profile_yaml,
    format_validation_error,
    read_profile_mapping,
)
from lastmile.profiles.noise_model import PROFILE_NAME_PATTERN, find_profile_file
from lastmile.profiles.presets import MagnitudeTable
from lastmile.scenario.specs import StrictModel

__all__ = [
    "DEFAULT_FIR_LENGTH_S",
    "DeviceProfile",
    "DeviceResponseTable",
    "FrequencyTable",
    "MeasuredDeviceResponse",
    "SweepSettings",
    "load_device_profile",
    "minimum_phase_fir",
    "save_device_profile",
]

DEFAULT_FIR_LENGTH_S = 0.064
_DYNAMIC_RANGE_DB = 80.0


class FrequencyTable(StrictModel):
    """Values at ascending frequencies."""

    freqs_hz: tuple[float, ...] = Field(min_length=2)
    values: tuple[float, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> FrequencyTable:
        if len(self.freqs_hz) != len(self.values):
            raise ValueError("freqs_hz and values must have the same length")
        if self.freqs_hz[0] <= 0 or any(
            b <= a for a, b in zip(self.freqs_hz, self.freqs_hz[1:], strict=False)
        ):
            raise ValueError("freqs_hz must be positive and strictly increasing")
        return self


class DeviceResponseTable(StrictModel):
    """Magnitude response in dB re its value at ``reference_freq_hz`` (interpolated
    linearly against log-frequency, held flat beyond the ends)."""

    reference_freq_hz: float = Field(gt=0)
    reference_gain_db: float = Field(
        description="Measured gain at the reference frequency (removed from gain_db)."
    )
    freqs_hz: tuple[float, ...] = Field(min_length=2)
    gain_db: tuple[float, ...] = Field(min_length=2)

    @model_validator(mode="after")
    def _check(self) -> DeviceResponseTable:
        if len(self.freqs_hz) != len(self.gain_db):
            raise ValueError(
                f"freqs_hz has {len(self.freqs_hz)} values but gain_db {len(self.gain_db)}"
            )
        if self.freqs_hz[0] <= 0 or any(
            b <= a for a, b in zip(self.freqs_hz, self.freqs_hz[1:], strict=False)
        ):
            raise ValueError("freqs_hz must be positive and strictly increasing")
        if any(not -200 <= g <= 60 for g in self.gain_db):
            raise ValueError("gain_db values must be in [-200, 60] dB")
        return self


class SweepSettings(StrictModel):
    f1_hz: float = Field(gt=0)
    f2_hz: float = Field(gt=0)
    duration_s: float = Field(gt=0)
    level_dbfs: float = Field(le=0)


class DeviceSource(StrictModel):
    sample_rate_hz: int = Field(gt=0)
    recording: str | None = Field(default=None, description="Name of the device recording.")
    reference: str | None = Field(default=None, description="Reference-microphone recording.")
    sweep: SweepSettings | None = None
    latency_s: float = Field(
        description="Delay from the sweep file (or reference) to the "
        "device recording: playback, device and recording together."
    )
    notes: tuple[str, ...] = ()
    created_by: str = ""


class RenderSettings(StrictModel):
    phase: Literal["minimum"] = "minimum"
    fir_length_s: float = Field(default=DEFAULT_FIR_LENGTH_S, gt=0.001, le=1.0)


class DeviceProfile(StrictModel):
    """A device profile file, ``schema_version: 1``."""

    schema_version: Literal[1] = 1
    kind: Literal["device"] = "device"
    name: str = Field(pattern=PROFILE_NAME_PATTERN)
    description: str = ""
    method: Literal["sweep", "reference"]
    source: DeviceSource
    response: DeviceResponseTable
    usable_band_hz: tuple[float, float] = Field(
        description="Where the response is within 10 dB of the reference (and measured reliably)."
    )
    noise_floor_dbfs: float = Field(description="RMS level of the recording without signal.")
    measurement_snr_db: float
    distortion: FrequencyTable | None = Field(
        default=None,
        description="Total harmonic distortion in percent by excitation frequency "
        "(harmonics 2-5, from the sweep's harmonic impulse responses).",
    )
    coherence: FrequencyTable | None = Field(
        default=None, description="Magnitude-squared coherence with the reference microphone."
    )
    render: RenderSettings = RenderSettings()

    def table(self) -> MagnitudeTable:
        """The response as a :class:`lastmile.profiles.presets.MagnitudeTable`."""
        return MagnitudeTable(
            self.response.freqs_hz, self.response.gain_db, description=self.description
        )


_HEADER = (
    "lastmile device profile (schema_version 1).\n"
    "Schema: lastmile/schemas/device_profile.schema.json; fields: noise_profiles/README.md.\n"
    "response.gain_db is dB re the reference frequency; the minimum-phase FIR used at render\n"
    "time is rebuilt from it. Regenerate with `lastmile capture device`."
)


def save_device_profile(profile: DeviceProfile, path: str | Path) -> Path:
    """Write ``profile`` as YAML to ``path`` atomically."""
    return atomic_write_text(Path(path), dump_profile_yaml(profile, header=_HEADER))


def load_device_profile(
    name_or_path: str | Path, *, search_dirs: Sequence[str | Path] = ()
) -> DeviceProfile:
    """Load a device profile by name (first of ``search_dirs``) or path.

    Raises :class:`ConfigError` naming the file and field (unknown keys, unsupported
    ``schema_version``, a noise profile given as a device profile, bad values).
    """
    path = find_profile_file(str(name_or_path), search_dirs)
    data = read_profile_mapping(path, kind="device")
    try:
        return DeviceProfile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            format_validation_error(path, exc)
            + "\nfix the field(s) named above, or recapture the profile"
        ) from None


@functools.lru_cache(maxsize=64)
def _min_phase_cached(
    freqs_hz: tuple[float, ...], gains_db: tuple[float, ...], sample_rate: int, n_taps: int
) -> np.ndarray:
    table = MagnitudeTable(freqs_hz, gains_db)
    n_fft = 1 << math.ceil(math.log2(16 * n_taps))
    grid = np.fft.rfftfreq(n_fft, 1 / sample_rate)
    gain_db = table.gain_db(grid)
    gain_db = np.maximum(gain_db, np.max(gain_db) - _DYNAMIC_RANGE_DB)
    log_mag = gain_db * (math.log(10) / 20)
    cepstrum = np.fft.irfft(log_mag, n_fft)
    folded = np.zeros(n_fft)
    folded[0] = cepstrum[0]
    folded[1 : n_fft // 2] = 2 * cepstrum[1 : n_fft // 2]
    folded[n_fft // 2] = cepstrum[n_fft // 2]
    impulse = np.fft.irfft(np.exp(np.fft.rfft(folded)), n_fft)[:n_taps]
    fade = max(1, n_taps // 8)
    impulse[n_taps - fade :] *= 0.5 + 0.5 * np.cos(np.pi * np.arange(fade) / fade)
    impulse.setflags(write=False)
    return impulse


def minimum_phase_fir(
    table: MagnitudeTable, *, sample_rate: int, fir_length_s: float = DEFAULT_FIR_LENGTH_S
) -> np.ndarray:
    """A minimum-phase FIR realising ``table`` at ``sample_rate`` (cepstral method).

    The magnitude (dB, clipped to 80 dB below its maximum) is sampled on a grid 16× finer
    than the filter, its real cepstrum folded onto positive quefrencies, and the first
    ``fir_length_s`` of the resulting impulse response kept, with a short fade-out.
    Deterministic and cached; the result is read-only.
    """
    if sample_rate <= 0:
        raise ConfigError(f"device FIR: sample_rate must be positive, got {sample_rate}")
    n_taps = max(16, round(fir_length_s * sample_rate))
    return _min_phase_cached(table.freqs_hz, table.gains_db, int(sample_rate), n_taps)


@dataclass(frozen=True, eq=False)
class MeasuredDeviceResponse:
    """A device profile as a :class:`lastmile.profiles.presets.DeviceResponse`."""

    profile: DeviceProfile
    name: str = field(init=False)
    table: MagnitudeTable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.profile.name)
        object.__setattr__(self, "table", self.profile.table())

    def taps(self, *, sample_rate: int) -> np.ndarray:
        """The minimum-phase FIR used at ``sample_rate``."""
        return minimum_phase_fir(
            self.table, sample_rate=sample_rate, fir_length_s=self.profile.render.fir_length_s
        )

    def apply(self, samples: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """Filter ``samples`` (shape ``(n,)``): same length, float32, minimum phase."""
        x = validate_audio(samples, source=f"device {self.name!r}")
        taps = self.taps(sample_rate=sample_rate)
        return fftconvolve(x.astype(np.float64), taps)[: x.size].astype(np.float32)

    def magnitude_db(self, freqs_hz: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """The measured gain (dB re the reference frequency) at ``freqs_hz``."""
        return self.table.gain_db(freqs_hz)
