"""Device (handset, headset, microphone) responses: presets, FIR realisation, AGC and clipping.

A device response is specified by a magnitude table, ``(freq_hz, gain_db)`` breakpoints
interpolated linearly in log-frequency (held flat beyond the first and last point), and
realised at whatever sample rate it is applied at as a **linear-phase FIR** designed with
:func:`scipy.signal.firwin2` (Hamming window, 64 ms long). The FIR's group delay, ``(N−1)/2``
samples, is removed when applying it, so the overall filter is zero-phase: speech stays
aligned with its transcript timing and with the noise. (The price is pre-ringing of a few ms
before sharp transients, inaudible at these roll-offs.)

The same realisation serves measured device profiles: :class:`FirDeviceResponse` carries
measured taps for their own rate and a magnitude table to redesign from at any other rate.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from scipy.signal import convolve, firwin2, lfilter

from lastmile.audio.io import validate_audio
from lastmile.channel.clipping import clip_at
from lastmile.errors import ConfigError
from lastmile.scenario.specs import DeviceSpec

__all__ = [
    "AGC_GATE_DBFS",
    "AGC_MAX_ATTENUATION_DB",
    "AGC_MAX_GAIN_DB",
    "AGC_TIME_CONSTANT_S",
    "FIR_DURATION_S",
    "PRESET_NAMES",
    "DeviceResponse",
    "FirDeviceResponse",
    "MagnitudeTable",
    "SpecDeviceResponse",
    "apply_agc",
    "apply_device",
    "design_linear_phase_fir",
    "get_preset",
    "preset_table",
]

FIR_DURATION_S = 0.064
"""Length of designed device FIRs (1025 taps at 16 kHz: ~16 Hz frequency resolution)."""
AGC_TIME_CONSTANT_S = 0.5
"""Time constant of the AGC's power detector: the gain follows the level over ~0.5 s."""
AGC_MAX_GAIN_DB = 20.0
"""Most the AGC will amplify."""
AGC_MAX_ATTENUATION_DB = 30.0
"""Most the AGC will attenuate."""
AGC_GATE_DBFS = -60.0
"""Below this detected level the AGC holds its gain instead of amplifying the noise floor."""


@runtime_checkable
class DeviceResponse(Protocol):
    """A device's frequency response, applied zero-phase (or delay-compensated)."""

    @property
    def name(self) -> str:
        """The preset or profile name."""
        ...

    def apply(self, samples: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """Filter ``samples`` (shape ``(n,)``); same length, float32, no added delay."""
        ...

    def magnitude_db(self, freqs_hz: np.ndarray, *, sample_rate: int) -> np.ndarray:
        """The specified (design target) gain in dB at ``freqs_hz``."""
        ...


@dataclass(frozen=True)
class MagnitudeTable:
    """A magnitude response as ``(freq_hz, gain_db)`` breakpoints.

    Interpolated linearly in log-frequency between points and held flat outside them (DC
    takes the first point's gain).
    """

    freqs_hz: tuple[float, ...]
    gains_db: tuple[float, ...]
    description: str = ""

    def __post_init__(self) -> None:
        freqs = tuple(float(f) for f in self.freqs_hz)
        gains = tuple(float(g) for g in self.gains_db)
        if len(freqs) < 2 or len(freqs) != len(gains):
            raise ConfigError(
                f"magnitude table: needs at least two (freq_hz, gain_db) points of equal count, "
                f"got {len(freqs)} frequencies and {len(gains)} gains"
            )
        if not all(math.isfinite(v) for v in freqs + gains):
            raise ConfigError("magnitude table: frequencies and gains must be finite numbers")
        if freqs[0] <= 0 or any(b <= a for a, b in itertools.pairwise(freqs)):
            raise ConfigError(
                f"magnitude table: frequencies must be positive and strictly increasing, "
                f"got {list(freqs)}"
            )
        object.__setattr__(self, "freqs_hz", freqs)
        object.__setattr__(self, "gains_db", gains)

    def gain_db(self, freqs_hz: np.ndarray | Sequence[float]) -> np.ndarray:
        """The gain in dB at each of ``freqs_hz`` (any shape)."""
        f = np.asarray(freqs_hz, dtype=np.float64)
        log_f = np.log(np.maximum(f, self.freqs_hz[0]))
        return np.interp(log_f, np.log(self.freqs_hz), self.gains_db)


def _n_taps(sample_rate: int) -> int:
    n = round(FIR_DURATION_S * sample_rate)
    return n + 1 if n % 2 == 0 else n


@functools.lru_cache(maxsize=64)
def _design_cached(
    freqs_hz: tuple[float, ...], gains_db: tuple[float, ...], sample_rate: int, n_taps: int
) -> np.ndarray:
    table = MagnitudeTable(freqs_hz, gains_db)
    n_grid = 1 + 2 ** math.ceil(math.log2(8 * n_taps))
    grid_hz = np.linspace(0.0, sample_rate / 2.0, n_grid)
    gains = 10.0 ** (table.gain_db(grid_hz) / 20.0)
    taps = firwin2(n_taps, grid_hz, gains, nfreqs=n_grid, fs=sample_rate)
    taps = np.asarray(taps, dtype=np.float64)
    taps.setflags(write=False)
    return taps


def design_linear_phase_fir(
    table: MagnitudeTable, *, sample_rate: int, n_taps: int | None = None
) -> np.ndarray:
    """A symmetric (linear-phase) FIR realising ``table`` at ``sample_rate``.

    ``n_taps`` (odd) defaults to :data:`FIR_DURATION_S` at the rate. The result is cached and
    read-only. Delay: ``(n_taps − 1) / 2`` samples.
    """
    if sample_rate <= 0:
        raise ConfigError(f"device FIR: sample_rate must be positive, got {sample_rate}")
    n = _n_taps(sample_rate) if n_taps is None else int(n_taps)
    if n < 3 or n % 2 == 0:
        raise ConfigError(f"device FIR: n_taps must be odd and ≥ 3, got {n}")
    return _design_cached(table.freqs_hz, table.gains_db, int(sample_rate), n)


def _convolve_aligned(samples: np.ndarray, taps: np.ndarray, *, delay_samples: int) -> np.ndarray:
    method = "direct" if taps.size <= 64 else "fft"  # short taps: exact, silence stays silent
    full = convolve(samples.astype(np.float64), taps, mode="full", method=method)
    return full[delay_samples : delay_samples + samples.size].astype(np.float32)


@dataclass(frozen=True)
class SpecDeviceResponse:
    """A device response given by a magnitude table, realised as a linear-phase FIR per rate."""

    name: str
    table: MagnitudeTable

    def taps(self, *, sample_rate: int) -> np.ndarray:
        """The FIR used at ``sample_rate`` (symmetric, delay ``(N−1)/2``)."""
        return design_linear_phase_fir(self.table, sample_rate=sample_rate)

    def apply(self, samples: np.ndarray, *, sample_rate: int) -> np.ndarray:
        x = validate_audio(samples, source=f"device {self.name!r}")
        taps = self.taps(sample_rate=sample_rate)
        return _convolve_aligned(x, taps, delay_samples=(taps.size - 1) // 2)

    def magnitude_db(self, freqs_hz: np.ndarray, *, sample_rate: int) -> np.ndarray:
        return self.table.gain_db(freqs_hz)


@dataclass(frozen=True, eq=False)
class FirDeviceResponse:
    """A measured (or otherwise given) FIR at ``taps_sample_rate``, with its magnitude table.

    At ``taps_sample_rate`` the taps themselves are applied, with ``delay_samples`` removed
    (default: ``(N−1)/2`` for symmetric taps, else the position of the largest tap). At any
    other rate a linear-phase FIR is redesigned from the magnitude table
    (``spec_freqs_hz``, ``spec_gain_db``), which should therefore be dense enough to carry
    the measured detail (e.g. a 1/12-octave smoothed response).
    """

    name: str
    taps: np.ndarray = field(repr=False)
    taps_sample_rate: int
    spec_freqs_hz: Sequence[float]
    spec_gain_db: Sequence[float]
    delay_samples: int | None = None
    table: MagnitudeTable = field(init=False, repr=False)

    def __post_init__(self) -> None:
        taps = np.array(self.taps, dtype=np.float64)
        if taps.ndim != 1 or taps.size == 0 or not np.all(np.isfinite(taps)):
            raise ConfigError(
                f"device {self.name!r}: taps must be a non-empty 1-D array of finite numbers"
            )
        if not np.any(taps):
            raise ConfigError(f"device {self.name!r}: taps are all zero")
        if self.taps_sample_rate <= 0:
            raise ConfigError(
                f"device {self.name!r}: taps_sample_rate must be positive, "
                f"got {self.taps_sample_rate}"
            )
        delay = self.delay_samples
        if delay is None:
            symmetric = np.allclose(taps, taps[::-1], rtol=0.0, atol=1e-12 * np.max(np.abs(taps)))
            delay = (taps.size - 1) // 2 if symmetric else int(np.argmax(np.abs(taps)))
        if not 0 <= delay < taps.size:
            raise ConfigError(
                f"device {self.name!r}: delay_samples must be in [0, {taps.size}), got {delay}"
            )
        taps.setflags(write=False)
        object.__setattr__(self, "taps", taps)
        object.__setattr__(self, "delay_samples", int(delay))
        table = MagnitudeTable(tuple(self.spec_freqs_hz), tuple(self.spec_gain_db))
        object.__setattr__(self, "spec_freqs_hz", table.freqs_hz)
        object.__setattr__(self, "spec_gain_db", table.gains_db)
        object.__setattr__(self, "table", table)

    def apply(self, samples: np.ndarray, *, sample_rate: int) -> np.ndarray:
        x = validate_audio(samples, source=f"device {self.name!r}")
        if sample_rate == self.taps_sample_rate:
            delay = int(self.delay_samples or 0)  # always set by __post_init__
            return _convolve_aligned(x, self.taps, delay_samples=delay)
        taps = design_linear_phase_fir(self.table, sample_rate=sample_rate)
        return _convolve_aligned(x, taps, delay_samples=(taps.size - 1) // 2)

    def magnitude_db(self, freqs_hz: np.ndarray, *, sample_rate: int) -> np.ndarray:
        return self.table.gain_db(freqs_hz)


def _table(points: Sequence[tuple[float, float]], description: str) -> MagnitudeTable:
    return MagnitudeTable(
        freqs_hz=tuple(f for f, _ in points),
        gains_db=tuple(g for _, g in points),
        description=description,
    )


# Preset specifications. Gains in dB re the 1 kHz level; "well outside" the band they reach
# -40 to -60 dB, which a 64 ms Hamming-windowed FIR realises to within a few dB.
# fmt: off
_PRESETS: dict[str, MagnitudeTable] = {
    "narrowband-handset": _table(
        [(50, -60), (100, -45), (200, -22), (300, -3), (500, -1), (1000, 0), (2000, 2),
         (3000, 4), (3400, 2), (3700, -20), (4000, -40), (5000, -60), (8000, -60)],
        "Telephone handset send path like ITU-T P.48 IRS send: passband 300-3400 Hz rising "
        "about 4 dB towards 3 kHz, steep roll-off below 300 Hz and above 3.4 kHz.",
    ),
    "wideband-headset": _table(
        [(20, -50), (50, -25), (100, -3), (150, 0), (1000, 0), (2500, 2), (4000, 3),
         (5500, 1), (7000, -3), (7600, -25), (9000, -50), (12000, -60)],
        "Wideband (HD voice) headset boom microphone: 100-7000 Hz, flat with a mild presence "
        "bump of about 3 dB around 4 kHz.",
    ),
    "laptop-mic": _table(
        [(50, -45), (100, -25), (200, -6), (300, -2), (500, 0), (1000, 0), (1400, -6),
         (2000, 0), (2500, 3), (3200, -5), (4200, 2), (5500, -4), (7000, 0), (8000, -6),
         (10000, -25), (14000, -45)],
        "Built-in laptop microphone: thin (high-pass about 200 Hz), comb-like dips from "
        "chassis reflections at 1.4, 3.2 and 5.5 kHz, roll-off above 8 kHz.",
    ),
    "speakerphone": _table(
        [(50, -50), (100, -35), (200, -15), (250, -6), (350, -1), (600, 0), (900, 4),
         (1200, 0), (2000, 1), (2800, 5), (3500, 0), (4500, 2), (6000, -4), (7000, -25),
         (9000, -50)],
        "Conference speakerphone microphone: 250-6000 Hz, loss of lows, enclosure resonances "
        "at about 900 Hz and 2.8 kHz.",
    ),
}
# fmt: on

PRESET_NAMES: tuple[str, ...] = tuple(sorted(_PRESETS))
"""Names accepted by :func:`get_preset`."""


def preset_table(name: str) -> MagnitudeTable:
    """The specification (magnitude table) of a preset."""
    try:
        return _PRESETS[name]
    except KeyError:
        raise ConfigError(
            f"device preset {name!r}: unknown; valid presets are {', '.join(PRESET_NAMES)} "
            "(or give a device profile name)"
        ) from None


def get_preset(name: str) -> DeviceResponse:
    """The device preset ``name``; raises :class:`ConfigError` listing the valid names."""
    return SpecDeviceResponse(name=name, table=preset_table(name))


def apply_agc(
    samples: np.ndarray, *, target_dbfs: float, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """A slow, causal, deterministic automatic gain control.

    The level is a one-pole power detector with time constant :data:`AGC_TIME_CONSTANT_S`
    (started at the mean power of the first time constant, so there is no start-up boost);
    the gain is ``target_dbfs − level`` limited to [−:data:`AGC_MAX_ATTENUATION_DB`,
    +:data:`AGC_MAX_GAIN_DB`], and held at its last value while the level is under
    :data:`AGC_GATE_DBFS` (silence is not pumped up). Returns the audio (float32) and the
    gain in dB per sample.
    """
    x = samples.astype(np.float64)
    alpha = math.exp(-1.0 / (AGC_TIME_CONSTANT_S * sample_rate))
    power = x * x
    start_power = float(np.mean(power[: max(1, round(AGC_TIME_CONSTANT_S * sample_rate))]))
    detected, _ = lfilter([1.0 - alpha], [1.0, -alpha], power, zi=[alpha * start_power])
    level_dbfs = 10.0 * np.log10(np.maximum(detected, 1e-20))
    gain_db = np.clip(target_dbfs - level_dbfs, -AGC_MAX_ATTENUATION_DB, AGC_MAX_GAIN_DB)
    open_gate = level_dbfs >= AGC_GATE_DBFS
    if not np.all(open_gate):
        index = np.arange(x.size)
        last_open = np.maximum.accumulate(np.where(open_gate, index, -1))
        held = np.where(last_open >= 0, gain_db[np.maximum(last_open, 0)], 0.0)
        gain_db = np.where(open_gate, gain_db, held)
    out = x * 10.0 ** (gain_db / 20.0)
    return out.astype(np.float32), gain_db


def apply_device(
    samples: np.ndarray,
    spec: DeviceSpec,
    *,
    sample_rate: int,
    response: DeviceResponse,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Render a device: frequency response, then AGC (if ``spec.agc``), then clipping.

    ``response`` is the resolved preset or profile for ``spec.name``. Returns the audio
    (float32, same length) and a JSON-able record of what was done: ``device``,
    ``response``, ``agc``, ``agc_target_dbfs``, ``agc_gain_db_mean/min/max`` (0.0 without
    AGC), ``clip_dbfs`` and ``clipped_fraction`` (0.0 without clipping).
    """
    x = validate_audio(samples, source=f"device {spec.name!r}")
    out = response.apply(x, sample_rate=sample_rate)
    record: dict[str, Any] = {
        "device": spec.name,
        "response": response.name,
        "agc": spec.agc,
        "agc_target_dbfs": spec.agc_target_dbfs if spec.agc else None,
        "agc_gain_db_mean": 0.0,
        "agc_gain_db_min": 0.0,
        "agc_gain_db_max": 0.0,
        "clip_dbfs": spec.clip_dbfs,
        "clipped_fraction": 0.0,
    }
    if spec.agc:
        out, gain_db = apply_agc(out, target_dbfs=spec.agc_target_dbfs, sample_rate=sample_rate)
        record["agc_gain_db_mean"] = float(np.mean(gain_db))
        record["agc_gain_db_min"] = float(np.min(gain_db))
        record["agc_gain_db_max"] = float(np.max(gain_db))
    if spec.clip_dbfs is not None:
        out, fraction = clip_at(out, clip_dbfs=spec.clip_dbfs)
        record["clipped_fraction"] = fraction
    return out, record
