"""Synthesize noise of any length from a noise profile (the ``profile`` noise source).

*Decide, then do*: :meth:`ProfileNoise.draw` draws every random choice of an item into a
plain JSON-able record (seeds for the broadband noise, drifts, wander and event waveforms,
the tones' start phases, every event's onset time and gain); :meth:`ProfileNoise.render`
reads only that record and the profile, so a record always renders the same audio.

Nothing is looped, so there is no seam:

- broadband: Gaussian white noise the length of the item, shaped in the frequency domain
  by the profile's envelope (interpolated in dB against log-frequency, zero above the
  source's Nyquist frequency), scaled to the profile's level; with a ``modulation`` record,
  each acoustic band gets its own seeded level process (Gaussian in dB, with the profile's
  depth and octave modulation spectrum, correlated across bands as measured, normalised so
  the band's mean power over the item is unchanged); then its slow wander;
- tones: sinusoids whose frequencies follow the drifting fundamental (a smooth Gaussian
  process of the profile's RMS and time scale), phase-continuous;
- events: one waveform per train and item (envelope × (shaped noise + the event's tones))
  placed at jittered onsets with their drawn gains.

Levels are the profile's own (dBFS); the mixer sets the level that counts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.fft

from lastmile.errors import ConfigError
from lastmile.profiles.dsp import (
    band_edges,
    band_shaped_psd,
    next_fast_len,
    smooth_unit_process,
)
from lastmile.profiles.generators import _check_request
from lastmile.profiles.generators import _draw_seed as _seed
from lastmile.profiles.noise_model import (
    EventTrain,
    Modulation,
    NoiseProfile,
    load_noise_profile,
)

__all__ = ["ProfileNoise", "profile_loader"]

_CONTROL_RATE_HZ = 50.0

Params = dict[str, Any]


def _get(who: str, record: Mapping[str, Any], key: str) -> Any:
    try:
        return record[key]
    except (KeyError, TypeError):
        raise ConfigError(
            f"{who}: the parameter record has no {key!r}; pass the record returned by this "
            "generator's draw()"
        ) from None


def _smooth(seed: int, *, n_samples: int, sample_rate: int, timescale_s: float) -> np.ndarray:
    """A unit-variance smooth process at the audio rate (see ``smooth_unit_process``)."""
    rng = np.random.default_rng(seed)
    g = smooth_unit_process(
        rng,
        duration_s=n_samples / sample_rate,
        timescale_s=timescale_s,
        rate_hz=_CONTROL_RATE_HZ,
    )
    t = np.arange(n_samples) / sample_rate
    return np.interp(t, np.arange(g.size) / _CONTROL_RATE_HZ, g)


def _modulation_gains(
    modulation: Modulation, seed: int, *, n_samples: int, sample_rate: int
) -> list[np.ndarray]:
    """Amplitude gain (shape ``(n_samples,)``) of each band of ``modulation``: a Gaussian
    level process in dB with the band's depth and octave modulation spectrum (density
    interpolated in dB against log-frequency, zero outside the outer octaves), made at the
    envelope rate and interpolated; its power has mean 1 over the item."""
    rate = modulation.frame_rate_hz
    n_ctrl = math.ceil(n_samples / sample_rate * rate) + 2
    n_fft = next_fast_len(max(n_ctrl, round(4 * rate / modulation.mod_freqs_hz[0])))
    freqs = scipy.fft.rfftfreq(n_fft, 1.0 / rate)
    centres = np.log2(np.asarray(modulation.mod_freqs_hz))
    inside = (freqs >= modulation.mod_freqs_hz[0] / math.sqrt(2)) & (
        freqs < modulation.mod_freqs_hz[-1] * math.sqrt(2)
    )
    rng = np.random.default_rng(seed)
    common = scipy.fft.rfft(rng.standard_normal(n_fft))
    rho = modulation.band_correlation
    t_ctrl = np.arange(n_fft) / rate
    t = np.arange(n_samples) / sample_rate
    gains = []
    for band in modulation.bands:
        own = scipy.fft.rfft(rng.standard_normal(n_fft))
        if band.depth_db <= 0:
            gains.append(np.ones(n_samples))
            continue
        shape = np.zeros(freqs.size)
        level = np.interp(np.log2(freqs[inside]), centres, np.asarray(band.mod_power_db))
        shape[inside] = np.sqrt(10 ** (level / 10) / freqs[inside])  # per octave -> per Hz
        g = scipy.fft.irfft((math.sqrt(rho) * common + math.sqrt(1 - rho) * own) * shape, n=n_fft)
        g = g[:n_ctrl]
        std = float(np.std(g))
        level_db = band.depth_db * g / std if std > 0 else np.zeros(n_ctrl)
        power = np.interp(t, t_ctrl[:n_ctrl], 10 ** (level_db / 10))
        gains.append(np.sqrt(power / float(np.mean(power))))
    return gains


@dataclass(frozen=True, eq=False)
class ProfileNoise:
    """The noise generator of one :class:`NoiseProfile` (protocol ``NoiseGenerator``)."""

    profile: NoiseProfile
    name: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", self.profile.name)

    # -- decide ---------------------------------------------------------------------
    def draw(self, rng: np.random.Generator, *, n_samples: int, sample_rate: int) -> Params:
        """Draw this item's random choices (JSON-able)."""
        who = f"noise profile {self.name!r}"
        _check_request(who, n_samples=n_samples, sample_rate=sample_rate)
        duration_s = n_samples / sample_rate
        tones = [
            {
                "drift_seed": _seed(rng),
                "phases_rad": [float(rng.uniform(0, 2 * math.pi)) for _ in s.harmonics],
            }
            for s in self.profile.tones
        ]
        events = []
        for train in self.profile.events:
            phase = float(rng.uniform(-train.period_s, 0.0))
            count = math.floor((duration_s - phase) / train.period_s) + 1
            jitter = (
                rng.normal(0.0, train.jitter_s, count) if train.jitter_s > 0 else np.zeros(count)
            )
            onsets = phase + np.arange(count) * train.period_s + jitter
            gains = (
                rng.normal(0.0, train.level_std_db, count)
                if train.level_std_db > 0
                else np.zeros(count)
            )
            keep = (onsets + train.duration_s > 0) & (onsets < duration_s)
            events.append(
                {
                    "waveform_seed": _seed(rng),
                    "onsets_s": [round(float(v), 6) for v in onsets[keep]],
                    "gains_db": [round(float(v), 3) for v in gains[keep]],
                }
            )
        record: Params = {
            "profile": self.name,
            "broadband_seed": _seed(rng),
            "wander_seed": _seed(rng),
        }
        if self.profile.broadband.modulation is not None:
            record["modulation_seed"] = _seed(rng)
        return {**record, "tones": tones, "events": events}

    # -- do -------------------------------------------------------------------------
    def render(self, params: Mapping[str, Any], *, n_samples: int, sample_rate: int) -> np.ndarray:
        """Render ``n_samples`` (float32, shape ``(n_samples,)``) from a drawn record."""
        who = f"noise profile {self.name!r}"
        _check_request(who, n_samples=n_samples, sample_rate=sample_rate)
        tones = _get(who, params, "tones")
        events = _get(who, params, "events")
        if len(tones) != len(self.profile.tones) or len(events) != len(self.profile.events):
            raise ConfigError(
                f"{who}: the record has {len(tones)} tone series and {len(events)} event "
                f"trains but the profile has {len(self.profile.tones)} and "
                f"{len(self.profile.events)}; draw the record with this profile"
            )
        modulation_seed = None
        if self.profile.broadband.modulation is not None:
            modulation_seed = int(_get(who, params, "modulation_seed"))
        out = self.render_broadband(
            int(_get(who, params, "broadband_seed")),
            int(_get(who, params, "wander_seed")),
            modulation_seed=modulation_seed,
            n_samples=n_samples,
            sample_rate=sample_rate,
        )
        for series, record in zip(self.profile.tones, tones, strict=True):
            out += self._render_series(series, record, n_samples=n_samples, sample_rate=sample_rate)
        for train, record in zip(self.profile.events, events, strict=True):
            out += self._render_events(train, record, n_samples=n_samples, sample_rate=sample_rate)
        return out.astype(np.float32)

    def render_broadband(
        self,
        seed: int,
        wander_seed: int,
        *,
        modulation_seed: int | None = None,
        n_samples: int,
        sample_rate: int,
    ) -> np.ndarray:
        """The broadband part alone (float64); ``modulation_seed`` is needed when the
        profile has a ``modulation`` (ignored otherwise)."""
        bb = self.profile.broadband
        n_fft = next_fast_len(n_samples)
        white = np.random.default_rng(seed).standard_normal(n_fft)
        freqs = scipy.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        gain = np.sqrt(self._broadband_psd(freqs) * sample_rate / 2.0)
        shaped = scipy.fft.rfft(white) * gain
        if bb.modulation is None:
            out = scipy.fft.irfft(shaped, n=n_fft)[:n_samples]
        else:
            if modulation_seed is None:
                raise ConfigError(
                    f"noise profile {self.name!r}: the profile has a broadband modulation "
                    "but no modulation_seed was given; pass the record returned by draw()"
                )
            bands = bb.modulation.bands
            gains = _modulation_gains(
                bb.modulation, modulation_seed, n_samples=n_samples, sample_rate=sample_rate
            )
            out = np.zeros(n_samples)
            for i, (band, band_gain) in enumerate(zip(bands, gains, strict=True)):
                part = np.ones(freqs.size, dtype=bool)
                if i > 0:
                    part &= freqs >= band.low_hz
                if i + 1 < len(bands):
                    part &= freqs < bands[i + 1].low_hz
                out += scipy.fft.irfft(shaped * part, n=n_fft)[:n_samples] * band_gain
        if bb.wander_db > 0:
            g = _smooth(
                wander_seed,
                n_samples=n_samples,
                sample_rate=sample_rate,
                timescale_s=bb.wander_timescale_s,
            )
            sigma = bb.wander_db * math.log(10) / 10
            out *= np.sqrt(10 ** (bb.wander_db * g / 10) / math.exp(sigma**2 / 2))
        return out

    def _broadband_psd(self, freqs_hz: np.ndarray) -> np.ndarray:
        """One-sided PSD of the broadband part at ``freqs_hz`` (zero at DC and above the
        source's Nyquist frequency), scaled so that it integrates to the profile's level."""
        bb = self.profile.broadband
        table_f = np.asarray(bb.spectrum.freqs_hz)
        table_db = np.asarray(bb.spectrum.psd_db)
        top = self.profile.max_freq_hz
        dense = np.linspace(0.0, top, 65537)
        total = float(np.sum(band_shaped_psd(dense, table_f, table_db, top_hz=top))) * (
            dense[1] - dense[0]
        )
        scale = 10 ** (bb.level_dbfs / 10) / total if total > 0 else 0.0
        return band_shaped_psd(freqs_hz, table_f, table_db, top_hz=top) * scale

    def _render_series(
        self, series: Any, record: Mapping[str, Any], *, n_samples: int, sample_rate: int
    ) -> np.ndarray:
        who = f"noise profile {self.name!r}"
        phases = [float(p) for p in _get(who, record, "phases_rad")]
        if len(phases) != len(series.harmonics):
            raise ConfigError(
                f"{who}: tone record has {len(phases)} phases for "
                f"{len(series.harmonics)} harmonics; draw it with this profile"
            )
        f0 = series.fundamental_hz
        if series.drift_rms_hz > 0:
            g = _smooth(
                int(_get(who, record, "drift_seed")),
                n_samples=n_samples,
                sample_rate=sample_rate,
                timescale_s=series.drift_timescale_s,
            )
            inst = f0 + series.drift_rms_hz * g
        else:
            inst = np.full(n_samples, f0)
        base_phase = 2 * math.pi * np.cumsum(inst / f0) / sample_rate
        top = min(0.98 * sample_rate / 2, self.profile.max_freq_hz)
        out = np.zeros(n_samples)
        for h, phi in zip(series.harmonics, phases, strict=True):
            if h.freq_hz * (1 + 4 * series.drift_rms_hz / f0) >= top:
                continue
            amp = math.sqrt(2.0) * 10 ** (h.level_dbfs / 20)
            out += amp * np.sin(h.freq_hz * base_phase + phi)
        return out

    def _event_noise(
        self,
        train: EventTrain,
        rng: np.random.Generator,
        *,
        envelope: np.ndarray,
        tones: np.ndarray,
        energy: float,
        sample_rate: int,
    ) -> np.ndarray:
        """The noise-like part of an event: shaped noise × ``envelope`` such that ``tones``
        plus it has the event's band spectrum (and total ``energy``, Σx²).

        Multiplying by a short envelope smears the spectrum (valleys between resonances fill
        in), so the shaping gain is corrected band by band a few times against what the
        tones already put in each band (deterministic: same seed, same waveform).
        """
        n = envelope.size
        n_fft = next_fast_len(2 * n)
        freqs = scipy.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        centres = np.asarray(train.spectrum.freqs_hz)
        top = min(self.profile.max_freq_hz, sample_rate / 2.0)
        target = band_shaped_psd(freqs, centres, np.asarray(train.spectrum.psd_db), top_hz=top)
        white = scipy.fft.rfft(rng.standard_normal(n_fft))
        lo, hi = band_edges(centres, top_hz=top)
        band = np.searchsorted(hi, freqs, side="right")
        inside = (freqs >= lo[0]) & (band < centres.size) & (target > 0)
        if not np.any(inside):
            return np.zeros(n)

        def per_band(values: np.ndarray) -> np.ndarray:
            return np.bincount(band[inside], weights=values[inside], minlength=centres.size)

        want = per_band(target)
        want *= energy * n_fft / 2.0 / want.sum()  # one-sided bin units (Parseval)
        have = per_band(np.abs(scipy.fft.rfft(tones, n_fft)) ** 2)
        noise_want = np.maximum(want - have, 0.02 * want)
        gain = np.sqrt(target)
        noise = np.zeros(n)
        for _ in range(5):
            noise = scipy.fft.irfft(white * gain, n=n_fft)[:n] * envelope
            got = per_band(np.abs(scipy.fft.rfft(noise, n_fft)) ** 2)
            ok = (got > 0) & (noise_want > 0)
            if not np.any(ok):
                break
            factor = np.ones(centres.size)
            factor[ok] = np.sqrt(np.clip(noise_want[ok] / got[ok], 1e-4, 1e4))
            gain[inside] *= factor[band[inside]]
        return noise

    def event_waveform(self, train: EventTrain, seed: int, *, sample_rate: int) -> np.ndarray:
        """One event of ``train`` (float64): envelope × (the event's tones + shaped noise),
        at its level; the noise fills what the tones leave of the event's spectrum."""
        n = max(2, round(train.duration_s * sample_rate))
        t = np.arange(n) / sample_rate
        env_t = np.arange(len(train.envelope_db)) * train.envelope_step_s
        env = 10 ** (np.interp(t, env_t, np.asarray(train.envelope_db)) / 20)
        rng = np.random.default_rng(seed)
        energy = 10 ** (train.level_dbfs / 10) * n
        env_energy = float(np.sum(env**2))
        top = min(0.98 * sample_rate / 2, self.profile.max_freq_hz)
        tones = np.zeros(n)
        for tone in train.tones:
            phase = float(rng.uniform(0, 2 * math.pi))
            if tone.freq_hz < top and env_energy > 0:
                amp = math.sqrt(2.0 * energy * 10 ** (tone.level_db / 10) / env_energy)
                tones += amp * env * np.sin(2 * math.pi * tone.freq_hz * t + phase)
        noise = self._event_noise(
            train, rng, envelope=env, tones=tones, energy=energy, sample_rate=sample_rate
        )
        wave = tones + noise
        total = float(np.sum(wave**2))
        return wave * math.sqrt(energy / total) if total > 0 else wave

    def _render_events(
        self, train: EventTrain, record: Mapping[str, Any], *, n_samples: int, sample_rate: int
    ) -> np.ndarray:
        who = f"noise profile {self.name!r}"
        onsets = np.asarray(_get(who, record, "onsets_s"), dtype=np.float64)
        gains = np.asarray(_get(who, record, "gains_db"), dtype=np.float64)
        if onsets.shape != gains.shape:
            raise ConfigError(
                f"{who}: event record has {onsets.size} onsets but "
                f"{gains.size} gains; draw it with this profile"
            )
        wave = self.event_waveform(
            train, int(_get(who, record, "waveform_seed")), sample_rate=sample_rate
        )
        out = np.zeros(n_samples + 2 * wave.size)
        for onset, gain_db in zip(onsets, gains, strict=True):
            start = round(onset * sample_rate) + wave.size
            if start + wave.size <= 0 or start >= out.size:
                continue
            a, b = max(0, start), min(out.size, start + wave.size)
            out[a:b] += 10 ** (gain_db / 20) * wave[a - start : b - start]
        return out[wave.size : wave.size + n_samples]


def profile_loader(search_dirs: Sequence[str | Path]) -> Callable[[str], ProfileNoise]:
    """A loader for :func:`lastmile.profiles.generators.make_noise_generator`: name →
    :class:`ProfileNoise`, searching ``search_dirs`` in order (each profile read once)."""
    dirs = tuple(Path(d) for d in search_dirs)
    loaded: dict[str, ProfileNoise] = {}

    def load(name: str) -> ProfileNoise:
        if name not in loaded:
            loaded[name] = ProfileNoise(load_noise_profile(name, search_dirs=dirs))
        return loaded[name]

    return load
