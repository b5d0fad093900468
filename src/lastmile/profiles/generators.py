"""Noise sources: white, pink, brown, hum, tone and looped recordings.

Every generator works in two steps, *decide, then do* (as audiomentations transforms do):
:meth:`NoiseGenerator.draw` takes the one random generator of the item and returns the drawn
parameters as a plain JSON-able ``dict`` (saved with the item's result); :meth:`render` reads
only that record, so the same record always renders byte-identical audio.

Generators produce an arbitrary, non-zero level (about -20 dBFS); :func:`lastmile.audio.mix_at_snr`
sets the level that counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import scipy.fft

from lastmile.audio.io import read_audio
from lastmile.errors import AudioError, ConfigError
from lastmile.scenario.specs import (
    BrownNoiseSpec,
    FileNoiseSpec,
    HumNoiseSpec,
    PinkNoiseSpec,
    ProfileNoiseSpec,
    ToneNoiseSpec,
    WhiteNoiseSpec,
)

__all__ = [
    "COLOURED_NOISE_CORNER_HZ",
    "MIN_NOISE_FILE_S",
    "OUTPUT_RMS_DBFS",
    "ColouredNoise",
    "FileNoise",
    "HumNoise",
    "NoiseGenerator",
    "ToneNoise",
    "make_noise_generator",
]

OUTPUT_RMS_DBFS = -20.0
"""Level at which the synthetic generators render (hum and tone: the fundamental's RMS)."""
COLOURED_NOISE_CORNER_HZ = 20.0
"""Pink and brown noise follow 1/f and 1/f² above this frequency and are flat below it, so
their power is not dominated by sub-audio drift (which would make the SNR meaningless)."""
MIN_NOISE_FILE_S = 1.0
"""Shortest noise recording accepted for looping."""

_SEED_HIGH = 2**63 - 1
_OUTPUT_RMS = 10.0 ** (OUTPUT_RMS_DBFS / 20.0)

Params = dict[str, Any]


@runtime_checkable
class NoiseGenerator(Protocol):
    """A noise source: draw the random choices, then render from that record alone."""

    @property
    def name(self) -> str:
        """A short label for the source (used in records and ids)."""
        ...

    def draw(self, rng: np.random.Generator, *, n_samples: int, sample_rate: int) -> Params:
        """Draw this item's random parameters as plain JSON-able values."""
        ...

    def render(self, params: Mapping[str, Any], *, n_samples: int, sample_rate: int) -> np.ndarray:
        """Render ``n_samples`` of noise (float32, shape ``(n_samples,)``) from ``params``."""
        ...


def _check_request(who: str, *, n_samples: int, sample_rate: int) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int | np.integer) or n_samples < 1:
        raise ConfigError(f"{who}: n_samples must be a positive integer, got {n_samples!r}")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise ConfigError(f"{who}: sample_rate must be an integer in Hz, got {sample_rate!r}")
    if sample_rate <= 0:
        raise ConfigError(f"{who}: sample_rate must be positive, got {sample_rate}")


def _param(who: str, params: Mapping[str, Any], key: str) -> Any:
    try:
        return params[key]
    except KeyError:
        raise ConfigError(
            f"{who}: the parameter record has no {key!r} (got keys {sorted(params)}); "
            "pass the record returned by this generator's draw()"
        ) from None


def _draw_seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, _SEED_HIGH, dtype=np.int64))


def _draw_phase(rng: np.random.Generator) -> float:
    return float(rng.uniform(0.0, 2.0 * math.pi))


@dataclass(frozen=True)
class ColouredNoise:
    """Gaussian noise with power spectral density ∝ 1/f^exponent (0 white, 1 pink, 2 brown).

    Shaped in the frequency domain: white Gaussian noise from a generator seeded by the drawn
    ``noise_seed``, its spectrum multiplied by ``f^(-exponent/2)`` above
    :data:`COLOURED_NOISE_CORNER_HZ` (flat below, zero at DC), then scaled to
    :data:`OUTPUT_RMS_DBFS`. Pink falls 3.01 dB per octave, brown 6.02 dB per octave.
    """

    name: str
    exponent: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.exponent <= 2.0:
            raise ConfigError(
                f"noise {self.name!r}: spectral exponent must be in [0, 2], got {self.exponent}"
            )

    def draw(self, rng: np.random.Generator, *, n_samples: int, sample_rate: int) -> Params:
        _check_request(f"noise {self.name!r}", n_samples=n_samples, sample_rate=sample_rate)
        return {"noise_seed": _draw_seed(rng)}

    def render(self, params: Mapping[str, Any], *, n_samples: int, sample_rate: int) -> np.ndarray:
        who = f"noise {self.name!r}"
        _check_request(who, n_samples=n_samples, sample_rate=sample_rate)
        seed = int(_param(who, params, "noise_seed"))
        local = np.random.default_rng(seed)  # a generator of this item's own, not global state
        n_fft = scipy.fft.next_fast_len(n_samples, real=True)
        white = local.standard_normal(n_fft)
        if self.exponent == 0.0:
            noise = white[:n_samples]
        else:
            spectrum = scipy.fft.rfft(white)
            freqs_hz = scipy.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
            shaped_hz = np.maximum(freqs_hz, COLOURED_NOISE_CORNER_HZ)
            spectrum *= shaped_hz ** (-self.exponent / 2.0)
            spectrum[0] = 0.0
            noise = scipy.fft.irfft(spectrum, n=n_fft)[:n_samples]
        rms = float(np.sqrt(np.mean(noise * noise)))
        if rms == 0.0:  # one sample of white noise can be exactly zero only in theory
            noise = np.ones(n_samples)
            rms = 1.0
        return (noise * (_OUTPUT_RMS / rms)).astype(np.float32)


def _check_below_nyquist(who: str, freq_hz: float, *, sample_rate: int) -> None:
    if freq_hz >= sample_rate / 2.0:
        raise ConfigError(
            f"{who}: {freq_hz:g} Hz is at or above the Nyquist frequency "
            f"({sample_rate / 2:g} Hz at {sample_rate} Hz); lower the frequency or render at a "
            "higher sample rate"
        )


@dataclass(frozen=True)
class HumNoise:
    """Mains or machine hum: harmonics ``k·f(t)`` of a slowly drifting fundamental.

    ``f(t) = fundamental_hz + drift_hz·sin(2π t / drift_period_s + drift_phase)``; the phase is
    the exact integral of ``f``, so the hum is phase-continuous. Harmonic ``k`` (k = 1 is the
    fundamental) has amplitude ``10^(harmonics_db[k−1]/20)`` relative to the fundamental, whose
    RMS is :data:`OUTPUT_RMS_DBFS`. Harmonics that would reach the Nyquist frequency are left
    out (recorded nowhere: they are a function of the sample rate, not drawn).

    Drawn: one start phase per harmonic and the drift phase.
    """

    fundamental_hz: float
    harmonics_db: tuple[float, ...]
    drift_hz: float = 0.0
    drift_period_s: float = 20.0
    name: str = "hum"

    def __post_init__(self) -> None:
        who = f"noise {self.name!r}"
        if not self.fundamental_hz > 0:
            raise ConfigError(f"{who}: fundamental_hz must be > 0, got {self.fundamental_hz}")
        if len(self.harmonics_db) == 0:
            raise ConfigError(f"{who}: harmonics_db needs at least one level (the fundamental)")
        if not all(math.isfinite(level) for level in self.harmonics_db):
            raise ConfigError(f"{who}: harmonics_db must be finite dB values")
        if not 0.0 <= self.drift_hz < self.fundamental_hz:
            raise ConfigError(
                f"{who}: drift_hz must be in [0, fundamental_hz), got {self.drift_hz}"
            )
        if not self.drift_period_s > 0:
            raise ConfigError(f"{who}: drift_period_s must be > 0, got {self.drift_period_s}")
        object.__setattr__(self, "harmonics_db", tuple(float(v) for v in self.harmonics_db))

    def audible_harmonics(self, *, sample_rate: int) -> int:
        """How many harmonics stay below the Nyquist frequency (at the peak of the drift)."""
        peak_hz = self.fundamental_hz + self.drift_hz
        _check_below_nyquist(f"noise {self.name!r}", peak_hz, sample_rate=sample_rate)
        count = math.ceil((sample_rate / 2.0) / peak_hz) - 1
        return max(1, min(len(self.harmonics_db), count))

    def draw(self, rng: np.random.Generator, *, n_samples: int, sample_rate: int) -> Params:
        _check_request(f"noise {self.name!r}", n_samples=n_samples, sample_rate=sample_rate)
        self.audible_harmonics(sample_rate=sample_rate)  # refuse an inaudible hum up front
        phases = [_draw_phase(rng) for _ in self.harmonics_db]
        return {"harmonic_phases_rad": phases, "drift_phase_rad": _draw_phase(rng)}

    def render(self, params: Mapping[str, Any], *, n_samples: int, sample_rate: int) -> np.ndarray:
        who = f"noise {self.name!r}"
        _check_request(who, n_samples=n_samples, sample_rate=sample_rate)
        phases = [float(p) for p in _param(who, params, "harmonic_phases_rad")]
        drift_phase = float(_param(who, params, "drift_phase_rad"))
        if len(phases) != len(self.harmonics_db):
            raise ConfigError(
                f"{who}: the record has {len(phases)} harmonic phases but the hum has "
                f"{len(self.harmonics_db)} harmonics; draw the record with this generator"
            )
        n_harmonics = self.audible_harmonics(sample_rate=sample_rate)
        t_s = np.arange(n_samples, dtype=np.float64) / sample_rate
        drift_arg = 2.0 * math.pi * t_s / self.drift_period_s + drift_phase
        # phase(t) = 2π ∫ f: 2π f0 t + drift_hz·P·(cos φ − cos(2π t/P + φ))
        phase = 2.0 * math.pi * self.fundamental_hz * t_s + self.drift_hz * self.drift_period_s * (
            math.cos(drift_phase) - np.cos(drift_arg)
        )
        out = np.zeros(n_samples, dtype=np.float64)
        amplitude = _OUTPUT_RMS * math.sqrt(2.0)
        for k in range(1, n_harmonics + 1):
            gain = 10.0 ** (self.harmonics_db[k - 1] / 20.0)
            out += (amplitude * gain) * np.sin(k * phase + phases[k - 1])
        return out.astype(np.float32)


@dataclass(frozen=True)
class ToneNoise:
    """A steady sine at ``freq_hz`` (RMS :data:`OUTPUT_RMS_DBFS`); drawn: the start phase."""

    freq_hz: float
    name: str = "tone"

    def __post_init__(self) -> None:
        if not self.freq_hz > 0:
            raise ConfigError(f"noise {self.name!r}: freq_hz must be > 0, got {self.freq_hz}")

    def draw(self, rng: np.random.Generator, *, n_samples: int, sample_rate: int) -> Params:
        who = f"noise {self.name!r}"
        _check_request(who, n_samples=n_samples, sample_rate=sample_rate)
        _check_below_nyquist(who, self.freq_hz, sample_rate=sample_rate)
        return {"phase_rad": _draw_phase(rng)}

    def render(self, params: Mapping[str, Any], *, n_samples: int, sample_rate: int) -> np.ndarray:
        who = f"noise {self.name!r}"
        _check_request(who, n_samples=n_samples, sample_rate=sample_rate)
        _check_below_nyquist(who, self.freq_hz, sample_rate=sample_rate)
        phase = float(_param(who, params, "phase_rad"))
        t_s = np.arange(n_samples, dtype=np.float64) / sample_rate
        tone = math.sqrt(2.0) * _OUTPUT_RMS * np.sin(2.0 * math.pi * self.freq_hz * t_s + phase)
        return tone.astype(np.float32)


def _crossfaded_loop(samples: np.ndarray, *, crossfade_samples: int) -> np.ndarray:
    """One period of a seamless loop of ``samples``: the tail is faded into the head.

    Period ``L − C`` (C the crossfade length): ``loop[i] = x[i]·sin(π/2·i/C) +
    x[L−C+i]·cos(π/2·i/C)`` for ``i < C`` and ``x[i]`` after. ``loop[0] = x[L−C]`` follows
    ``loop[L−C−1] = x[L−C−1]`` at the wrap, and ``loop[C−1] ≈ x[C−1]`` is followed by ``x[C]``,
    so there is no seam; sin²+cos² = 1 keeps uncorrelated noise at a constant power.
    """
    n = samples.size
    c = crossfade_samples
    x = samples.astype(np.float64)
    loop = x[: n - c].copy()
    if c > 0:
        ramp = (math.pi / 2.0) * np.arange(c, dtype=np.float64) / c
        loop[:c] = x[:c] * np.sin(ramp) + x[n - c :] * np.cos(ramp)
    return loop.astype(np.float32)


@dataclass(frozen=True, eq=False)
class FileNoise:
    """A noise recording, looped seamlessly with an equal-power crossfade.

    The recording is read once, at ``sample_rate`` (resampled loudly by
    :func:`lastmile.audio.read_audio` when its own rate differs). Drawn: the start offset into
    the loop, in samples. Build it with :meth:`from_file`.
    """

    name: str
    source: str
    sample_rate: int
    crossfade_s: float
    loop: np.ndarray = field(repr=False)
    notes: tuple[str, ...] = ()

    @classmethod
    def from_file(
        cls, path: str | Path, *, sample_rate: int, crossfade_s: float = 0.25
    ) -> FileNoise:
        """Load ``path`` at ``sample_rate`` and build its loop.

        Raises :class:`ConfigError` naming the file when it cannot be read, is shorter than
        :data:`MIN_NOISE_FILE_S`, is silent, or is too short for the crossfade.
        """
        path = Path(path)
        try:
            loaded = read_audio(path, sample_rate=sample_rate)
        except AudioError as exc:
            raise ConfigError(f"noise file {path}: {exc}") from exc
        samples = loaded.samples
        duration_s = samples.size / sample_rate
        if duration_s < MIN_NOISE_FILE_S:
            raise ConfigError(
                f"noise file {path}: {duration_s:.3f} s long; a looped noise recording must be "
                f"at least {MIN_NOISE_FILE_S:g} s; record or export a longer stretch of the noise"
            )
        if not np.any(samples):
            raise ConfigError(f"noise file {path}: the recording is all zero (digital silence)")
        if not crossfade_s >= 0.0:
            raise ConfigError(f"noise file {path}: crossfade_s must be ≥ 0, got {crossfade_s}")
        crossfade_samples = round(crossfade_s * sample_rate)
        if 2 * crossfade_samples > samples.size:
            raise ConfigError(
                f"noise file {path}: crossfade_s = {crossfade_s:g} s is more than half the "
                f"recording ({duration_s:.3f} s); shorten the crossfade or use a longer recording"
            )
        loop = _crossfaded_loop(samples, crossfade_samples=crossfade_samples)
        loop.setflags(write=False)
        return cls(
            name=path.stem,
            source=str(path),
            sample_rate=sample_rate,
            crossfade_s=float(crossfade_s),
            loop=loop,
            notes=loaded.notes,
        )

    def _check_rate(self, sample_rate: int) -> None:
        if sample_rate != self.sample_rate:
            raise ConfigError(
                f"noise file {self.source}: loaded at {self.sample_rate} Hz but asked for "
                f"{sample_rate} Hz; build the generator at the rate you render at"
            )

    def draw(self, rng: np.random.Generator, *, n_samples: int, sample_rate: int) -> Params:
        _check_request(f"noise file {self.source}", n_samples=n_samples, sample_rate=sample_rate)
        self._check_rate(sample_rate)
        return {"start_offset_samples": int(rng.integers(0, self.loop.size))}

    def render(self, params: Mapping[str, Any], *, n_samples: int, sample_rate: int) -> np.ndarray:
        who = f"noise file {self.source}"
        _check_request(who, n_samples=n_samples, sample_rate=sample_rate)
        self._check_rate(sample_rate)
        offset = int(_param(who, params, "start_offset_samples"))
        if not 0 <= offset < self.loop.size:
            raise ConfigError(
                f"{who}: start_offset_samples {offset} is outside the loop "
                f"[0, {self.loop.size}); draw the record with this generator"
            )
        index = (offset + np.arange(n_samples, dtype=np.int64)) % self.loop.size
        return self.loop[index].astype(np.float32, copy=True)


def make_noise_generator(
    spec: WhiteNoiseSpec
    | PinkNoiseSpec
    | BrownNoiseSpec
    | HumNoiseSpec
    | ToneNoiseSpec
    | FileNoiseSpec
    | ProfileNoiseSpec,
    *,
    base_dir: Path,
    sample_rate: int,
    profile_loader: Callable[[str], NoiseGenerator] | None = None,
) -> NoiseGenerator:
    """Build the generator for a noise spec of a scenario pack.

    ``file`` paths are relative to ``base_dir`` (the pack's folder). ``profile`` specs are
    handed to ``profile_loader`` (noise-profile synthesis); without one they are refused.
    """
    if isinstance(spec, WhiteNoiseSpec):
        return ColouredNoise(name="white", exponent=0.0)
    if isinstance(spec, PinkNoiseSpec):
        return ColouredNoise(name="pink", exponent=1.0)
    if isinstance(spec, BrownNoiseSpec):
        return ColouredNoise(name="brown", exponent=2.0)
    if isinstance(spec, HumNoiseSpec):
        hum = HumNoise(
            fundamental_hz=spec.fundamental_hz,
            harmonics_db=tuple(spec.harmonics_db),
            drift_hz=spec.drift_hz,
            drift_period_s=spec.drift_period_s,
            name=f"hum{spec.fundamental_hz:g}",
        )
        hum.audible_harmonics(sample_rate=sample_rate)
        return hum
    if isinstance(spec, ToneNoiseSpec):
        tone = ToneNoise(freq_hz=spec.freq_hz, name=f"tone{spec.freq_hz:g}")
        _check_below_nyquist(f"noise {tone.name!r}", tone.freq_hz, sample_rate=sample_rate)
        return tone
    if isinstance(spec, FileNoiseSpec):
        path = Path(base_dir) / spec.file
        if not path.is_file():
            raise ConfigError(
                f"noise file {spec.file!r}: not found (resolved to {path}); paths in a pack are "
                "relative to the pack file: put the recording there or fix the path"
            )
        return FileNoise.from_file(path, sample_rate=sample_rate, crossfade_s=spec.crossfade_s)
    if isinstance(spec, ProfileNoiseSpec):
        if profile_loader is None:
            raise ConfigError(
                f"noise profile {spec.profile!r}: noise profiles are unavailable here (no "
                "profile loader was given); pass profile_loader, or use a generator or a file"
            )
        return profile_loader(spec.profile)
    raise ConfigError(
        f"noise spec: unknown kind {type(spec).__name__}; expected white, pink, brown, hum, "
        "tone, file or profile"
    )
