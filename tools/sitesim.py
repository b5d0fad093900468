"""Site-noise simulations from physical descriptions: known-content material.

These synthesize *source recordings* whose content is known exactly (hum with set harmonics
and drift, coloured broadband noise, trains of knocks, beeps or clunks, speech-like signals),
to test noise-profile capture against and to make the shipped profiles
(``tools/make_profiles.py``). They are simulations, not recordings of real sites. A tool,
not part of the runtime package: ``tools/`` is on the tests' path (``pyproject.toml``), and
the tools and benchmarks import it as ``sitesim``.

The synthesis deliberately differs from :mod:`lastmile.profiles.synthesis` (IIR-like
parametric spectra, physical event waveforms, sinusoidal or random drift), so capture is not
tested against its own model. Every function takes one ``numpy.random.Generator``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.fft
import scipy.signal

from lastmile.profiles.dsp import next_fast_len, smooth_unit_process

__all__ = [
    "SITES",
    "BroadbandSpec",
    "EventSpec",
    "HumSpec",
    "SiteSpec",
    "beep_waveform",
    "broadband_noise",
    "clunk_waveform",
    "hum",
    "knock_waveform",
    "pulse_train",
    "simulate_site",
    "speech_like",
]


@dataclass(frozen=True)
class HumSpec:
    """Harmonics ``k = 1..`` of a drifting fundamental; levels are RMS dBFS per harmonic.

    ``drift="sine"`` moves the fundamental as ``drift_rms_hz·√2·sin(2π t/drift_timescale_s)``;
    ``"random"`` as a smooth Gaussian process of that RMS and 1/e time scale.
    """

    fundamental_hz: float
    levels_dbfs: tuple[float, ...]
    drift_rms_hz: float = 0.0
    drift_timescale_s: float = 20.0
    drift: str = "random"


@dataclass(frozen=True)
class BroadbandSpec:
    """Gaussian noise of RMS ``level_dbfs`` with a parametric spectrum.

    A slope of ``slope_db_per_octave`` about 1 kHz, Butterworth-like skirts at ``low_cut_hz``
    and ``high_cut_hz`` (order 2), and resonances ``(freq_hz, gain_db, width_octaves)``
    (Gaussian bumps in log-frequency). ``wander_db`` adds a slow random level wander.
    """

    level_dbfs: float
    slope_db_per_octave: float = -3.0
    low_cut_hz: float = 20.0
    high_cut_hz: float = 12000.0
    resonances: tuple[tuple[float, float, float], ...] = ()
    wander_db: float = 0.0
    wander_timescale_s: float = 3.0


@dataclass(frozen=True)
class EventSpec:
    """A train of ``kind`` events (knock, beep or clunk), onset every ``period_s`` ± jitter.

    ``level_dbfs`` is the RMS over ``duration_s`` (the nominal length of the event).
    """

    kind: str
    period_s: float
    level_dbfs: float
    jitter_s: float = 0.0
    duration_s: float = 0.05
    freq_hz: float = 1000.0
    level_std_db: float = 0.0


@dataclass(frozen=True)
class SiteSpec:
    """A simulated site: hums, broadband noise, event trains and optional babble talkers."""

    name: str
    description: str
    hums: tuple[HumSpec, ...] = ()
    broadband: tuple[BroadbandSpec, ...] = ()
    events: tuple[EventSpec, ...] = ()
    babble_talkers: int = 0
    babble_level_dbfs: float = -40.0
    notes: tuple[str, ...] = field(default=())


def hum(spec: HumSpec, rng: np.random.Generator, *, n_samples: int, sample_rate: int) -> np.ndarray:
    """Harmonics of a drifting fundamental, phase-continuous, random start phases."""
    t = np.arange(n_samples) / sample_rate
    if spec.drift_rms_hz <= 0:
        dev = np.zeros(n_samples)
    elif spec.drift == "sine":
        dev = (
            spec.drift_rms_hz
            * math.sqrt(2.0)
            * np.sin(2 * math.pi * t / spec.drift_timescale_s + rng.uniform(0, 2 * math.pi))
        )
    else:
        rate = 50.0
        g = smooth_unit_process(
            rng,
            duration_s=n_samples / sample_rate,
            timescale_s=spec.drift_timescale_s,
            rate_hz=rate,
        )
        dev = spec.drift_rms_hz * np.interp(t, np.arange(g.size) / rate, g)
    phase = 2 * math.pi * np.cumsum(spec.fundamental_hz + dev) / sample_rate
    out = np.zeros(n_samples)
    for k, level in enumerate(spec.levels_dbfs, start=1):
        if k * (spec.fundamental_hz + 4 * spec.drift_rms_hz) >= sample_rate / 2:
            break
        amp = math.sqrt(2.0) * 10 ** (level / 20)
        out += amp * np.sin(k * phase + rng.uniform(0, 2 * math.pi))
    return out


def _parametric_psd(spec: BroadbandSpec, freqs_hz: np.ndarray) -> np.ndarray:
    f = np.maximum(freqs_hz, 1e-3)
    level_db = spec.slope_db_per_octave * np.log2(f / 1000.0)
    for freq, gain_db, width in spec.resonances:
        level_db = level_db + gain_db * np.exp(-0.5 * (np.log2(f / freq) / width) ** 2)
    power = 10 ** (level_db / 10)
    power /= 1 + (spec.low_cut_hz / f) ** 4
    power /= 1 + (f / spec.high_cut_hz) ** 4
    power[freqs_hz <= 0] = 0.0
    return power


def broadband_noise(
    spec: BroadbandSpec, rng: np.random.Generator, *, n_samples: int, sample_rate: int
) -> np.ndarray:
    """Gaussian noise with the spec's spectrum at RMS ``level_dbfs`` (plus its wander)."""
    n_fft = next_fast_len(n_samples)
    spectrum = scipy.fft.rfft(rng.standard_normal(n_fft))
    freqs = scipy.fft.rfftfreq(n_fft, 1 / sample_rate)
    spectrum *= np.sqrt(_parametric_psd(spec, freqs))
    out = scipy.fft.irfft(spectrum, n=n_fft)[:n_samples]
    out *= 10 ** (spec.level_dbfs / 20) / np.sqrt(np.mean(out**2))
    if spec.wander_db > 0:
        rate = 20.0
        g = smooth_unit_process(
            rng,
            duration_s=n_samples / sample_rate,
            timescale_s=spec.wander_timescale_s,
            rate_hz=rate,
        )
        level = spec.wander_db * np.interp(
            np.arange(n_samples) / sample_rate, np.arange(g.size) / rate, g
        )
        sigma = spec.wander_db * math.log(10) / 10
        out *= np.sqrt(10 ** (level / 10) / math.exp(sigma**2 / 2))
    return out


def knock_waveform(*, sample_rate: int, freq_hz: float, duration_s: float) -> np.ndarray:
    """A gradient-coil knock: a sharp attack and damped resonances near ``freq_hz``.

    Deterministic (the same knock every time, as a scanner's gradient sequence repeats).
    """
    n = max(8, round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    decay = duration_s / 4.0
    out = np.zeros(n)
    for ratio, amp in ((1.0, 1.0), (1.63, 0.6), (2.71, 0.35), (0.47, 0.4)):
        out += amp * np.sin(2 * math.pi * freq_hz * ratio * t + ratio) * np.exp(-t / decay)
    attack = np.minimum(1.0, t / 0.001)
    return out * attack


def beep_waveform(*, sample_rate: int, freq_hz: float, duration_s: float) -> np.ndarray:
    """A monitor beep: a tone burst with 5 ms raised-cosine ramps and a weak 3rd harmonic."""
    n = max(8, round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    out = np.sin(2 * math.pi * freq_hz * t) + 0.15 * np.sin(2 * math.pi * 3 * freq_hz * t)
    ramp = min(n // 2, round(0.005 * sample_rate))
    if ramp > 0:
        r = 0.5 - 0.5 * np.cos(np.pi * np.arange(ramp) / ramp)
        out[:ramp] *= r
        out[n - ramp :] *= r[::-1]
    return out


def clunk_waveform(
    *, sample_rate: int, freq_hz: float, duration_s: float, rng: np.random.Generator
) -> np.ndarray:
    """A conveyor clunk: a low thump at ``freq_hz`` plus a decaying rattle of noise."""
    n = max(8, round(duration_s * sample_rate))
    t = np.arange(n) / sample_rate
    thump = np.sin(2 * math.pi * freq_hz * t) * np.exp(-t / (duration_s / 5))
    sos = scipy.signal.butter(
        2, [400, min(4000, 0.45 * sample_rate)], "bandpass", fs=sample_rate, output="sos"
    )
    rattle = scipy.signal.sosfilt(sos, rng.standard_normal(n)) * np.exp(-t / (duration_s / 3))
    rattle *= 0.5 / max(np.sqrt(np.mean(rattle**2)), 1e-12)
    return thump + rattle


def pulse_train(
    spec: EventSpec, rng: np.random.Generator, *, n_samples: int, sample_rate: int
) -> np.ndarray:
    """Events on the grid ``t0 + k·period_s`` with Gaussian jitter, each scaled so that its
    RMS over ``duration_s`` is ``level_dbfs`` (± ``level_std_db``)."""
    fresh_each_time = spec.kind == "clunk"  # a clunk's rattle differs every time
    if spec.kind == "knock":
        wave = knock_waveform(
            sample_rate=sample_rate, freq_hz=spec.freq_hz, duration_s=spec.duration_s
        )
    elif spec.kind == "beep":
        wave = beep_waveform(
            sample_rate=sample_rate, freq_hz=spec.freq_hz, duration_s=spec.duration_s
        )
    elif spec.kind == "clunk":
        wave = clunk_waveform(
            sample_rate=sample_rate, freq_hz=spec.freq_hz, duration_s=spec.duration_s, rng=rng
        )
    else:
        raise ValueError(f"unknown event kind {spec.kind!r}; use knock, beep or clunk")
    wave = wave * 10 ** (spec.level_dbfs / 20) / np.sqrt(np.mean(wave**2))
    out = np.zeros(n_samples + wave.size)
    t = rng.uniform(0, spec.period_s)
    while t * sample_rate < n_samples:
        onset = (
            round((t + rng.normal(0, spec.jitter_s)) * sample_rate)
            if spec.jitter_s
            else round(t * sample_rate)
        )
        if 0 <= onset < n_samples:
            gain = 10 ** (rng.normal(0, spec.level_std_db) / 20) if spec.level_std_db else 1.0
            if fresh_each_time:
                wave = clunk_waveform(
                    sample_rate=sample_rate,
                    freq_hz=spec.freq_hz,
                    duration_s=spec.duration_s,
                    rng=rng,
                )
                wave = wave * 10 ** (spec.level_dbfs / 20) / np.sqrt(np.mean(wave**2))
            out[onset : onset + wave.size] += gain * wave
        t += spec.period_s
    return out[:n_samples]


def speech_like(
    rng: np.random.Generator, *, n_samples: int, sample_rate: int, level_dbfs: float = -30.0
) -> np.ndarray:
    """A crude talker: voiced syllables (glottal pulses through moving formants) at 3-6 per
    second, with consonant noise bursts and pauses between phrases. Not speech, but it has
    speech's syllable-rate modulation, pitch and formants.
    """
    out = np.zeros(n_samples)
    pos = round(rng.uniform(0, 0.3) * sample_rate)
    formant_sets = (
        (730, 1090, 2440),
        (270, 2290, 3010),
        (530, 1840, 2480),
        (570, 840, 2410),
        (440, 1020, 2240),
        (300, 870, 2240),
        (660, 1720, 2410),
    )
    f0 = rng.uniform(100, 200)
    while pos < n_samples:
        n_syll = int(rng.integers(3, 9))
        for _ in range(n_syll):
            dur = rng.uniform(0.12, 0.28)
            n = round(dur * sample_rate)
            t = np.arange(n) / sample_rate
            pitch = f0 * (1 + 0.1 * rng.standard_normal()) * (1 - 0.15 * t / dur)
            phase = np.cumsum(pitch) / sample_rate
            pulses = np.diff(np.floor(phase), prepend=0.0)
            formants = formant_sets[int(rng.integers(len(formant_sets)))]
            voiced = np.zeros(n)
            for i, fc in enumerate(formants):
                b, a = scipy.signal.iirpeak(fc, Q=fc / 90, fs=sample_rate)
                voiced += scipy.signal.lfilter(b, a, pulses) / (i + 1)
            env = np.sin(np.pi * t / dur) ** 0.7
            syll = voiced * env
            if rng.uniform() < 0.6:  # a consonant burst before the vowel
                nc = round(rng.uniform(0.03, 0.08) * sample_rate)
                sos = scipy.signal.butter(
                    2, min(3000, 0.4 * sample_rate), "highpass", fs=sample_rate, output="sos"
                )
                burst = scipy.signal.sosfilt(sos, rng.standard_normal(nc)) * 0.05
                syll = np.concatenate([burst, syll])
            end = min(n_samples, pos + syll.size)
            out[pos:end] += syll[: end - pos]
            pos = end + round(rng.uniform(0.02, 0.08) * sample_rate)
            if pos >= n_samples:
                break
        pos += round(rng.uniform(0.3, 0.8) * sample_rate)
    rms = np.sqrt(np.mean(out**2))
    return out * (10 ** (level_dbfs / 20) / rms if rms > 0 else 0.0)


def simulate_site(
    site: SiteSpec, rng: np.random.Generator, *, seconds: float, sample_rate: int
) -> np.ndarray:
    """The simulated recording of ``site`` (float32, shape ``(n,)``)."""
    n = round(seconds * sample_rate)
    out = np.zeros(n)
    for h in site.hums:
        out += hum(h, rng, n_samples=n, sample_rate=sample_rate)
    for b in site.broadband:
        out += broadband_noise(b, rng, n_samples=n, sample_rate=sample_rate)
    for e in site.events:
        out += pulse_train(e, rng, n_samples=n, sample_rate=sample_rate)
    if site.babble_talkers:
        babble = np.zeros(n)
        for _ in range(site.babble_talkers):
            babble += speech_like(rng, n_samples=n, sample_rate=sample_rate)
        babble *= 10 ** (site.babble_level_dbfs / 20) / np.sqrt(np.mean(babble**2))
        out += babble
    return out.astype(np.float32)


def _sites() -> dict[str, SiteSpec]:
    sites: Sequence[SiteSpec] = (
        SiteSpec(
            name="hospital-imaging-suite",
            description="MRI control room and corridor during a scan: 60 Hz mains hum and "
            "harmonics from the gradient amplifiers and lighting, cold-head compressor and HVAC "
            "broadband noise, and the scanner's gradient knocking at about 3.4 per second.",
            hums=(
                HumSpec(
                    60.0,
                    (-38.0, -44.0, -41.0, -50.0, -53.0, -58.0, -61.0),
                    drift_rms_hz=0.02,
                    drift_timescale_s=15.0,
                ),
            ),
            broadband=(
                BroadbandSpec(
                    -42.0,
                    slope_db_per_octave=-4.0,
                    low_cut_hz=30,
                    high_cut_hz=9000,
                    resonances=((120.0, 6.0, 0.4),),
                    wander_db=0.3,
                ),
            ),
            events=(
                EventSpec(
                    "knock",
                    period_s=0.29,
                    level_dbfs=-27.0,
                    jitter_s=0.002,
                    duration_s=0.045,
                    freq_hz=900.0,
                    level_std_db=0.5,
                ),
            ),
        ),
        SiteSpec(
            name="icu-monitors",
            description="Intensive-care bay: patient monitors beeping (one every 1 s, one "
            "every 0.83 s), ventilator and HVAC broadband noise, a faint 50 Hz hum.",
            hums=(HumSpec(50.0, (-58.0, -62.0, -63.0), drift_rms_hz=0.03),),
            broadband=(
                BroadbandSpec(
                    -46.0,
                    slope_db_per_octave=-3.0,
                    low_cut_hz=40,
                    high_cut_hz=10000,
                    resonances=((400.0, 4.0, 0.7),),
                    wander_db=0.8,
                    wander_timescale_s=4.0,
                ),
            ),
            events=(
                EventSpec(
                    "beep",
                    period_s=1.0,
                    level_dbfs=-30.0,
                    duration_s=0.15,
                    freq_hz=975.0,
                    jitter_s=0.0005,
                ),
                EventSpec(
                    "beep",
                    period_s=0.83,
                    level_dbfs=-36.0,
                    duration_s=0.08,
                    freq_hz=2350.0,
                    jitter_s=0.0005,
                ),
            ),
        ),
        SiteSpec(
            name="warehouse-conveyor",
            description="Distribution warehouse aisle: conveyor motor whine (about 146 Hz "
            "with harmonics), roller rumble, ventilation, and a tote clunking over a belt "
            "joint every 1.6 s.",
            hums=(
                HumSpec(
                    146.3,
                    (-45.0, -49.0, -56.0, -52.0, -60.0),
                    drift_rms_hz=0.6,
                    drift_timescale_s=5.0,
                ),
            ),
            broadband=(
                BroadbandSpec(
                    -34.0,
                    slope_db_per_octave=-5.0,
                    low_cut_hz=25,
                    high_cut_hz=8000,
                    resonances=((250.0, 5.0, 0.5),),
                    wander_db=0.6,
                    wander_timescale_s=6.0,
                ),
            ),
            events=(
                EventSpec(
                    "clunk",
                    period_s=1.6,
                    level_dbfs=-24.0,
                    duration_s=0.18,
                    freq_hz=95.0,
                    jitter_s=0.03,
                    level_std_db=1.5,
                ),
            ),
        ),
        SiteSpec(
            name="call-centre-open-plan",
            description="Open-plan call centre: babble-like broadband noise (speech-shaped "
            "noise with the long-term spectrum of distant multi-talker babble and its slow "
            "level swell, no speech in it), HVAC diffuser noise, a faint 50 Hz hum.",
            hums=(HumSpec(50.0, (-62.0, -66.0, -64.0), drift_rms_hz=0.03),),
            broadband=(
                BroadbandSpec(
                    -41.0,
                    slope_db_per_octave=-5.0,
                    low_cut_hz=150,
                    high_cut_hz=6000,
                    resonances=((500.0, 6.0, 0.8),),
                    wander_db=1.5,
                    wander_timescale_s=1.5,
                ),
                BroadbandSpec(
                    -45.0,
                    slope_db_per_octave=-2.0,
                    low_cut_hz=40,
                    high_cut_hz=9000,
                    resonances=((1500.0, 3.0, 1.0),),
                ),
            ),
        ),
        SiteSpec(
            name="vehicle-cabin",
            description="Ambulance or delivery-van cabin at speed: strong low-frequency road "
            "and engine noise, engine firing order tone (about 31 Hz with harmonics) drifting "
            "with speed, wind noise.",
            hums=(
                HumSpec(
                    31.5,
                    (-37.0, -34.0, -43.0, -41.0, -50.0),
                    drift_rms_hz=0.25,
                    drift_timescale_s=8.0,
                ),
            ),
            broadband=(
                BroadbandSpec(
                    -32.0,
                    slope_db_per_octave=-6.0,
                    low_cut_hz=20,
                    high_cut_hz=3000,
                    wander_db=0.7,
                    wander_timescale_s=5.0,
                ),
                BroadbandSpec(-45.0, slope_db_per_octave=-1.0, low_cut_hz=500, high_cut_hz=10000),
            ),
        ),
    )
    return {s.name: s for s in sites}


SITES: dict[str, SiteSpec] = _sites()
"""The simulated sites behind the shipped noise profiles (see ``noise_profiles/README.md``)."""
