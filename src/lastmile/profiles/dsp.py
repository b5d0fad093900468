"""Small DSP helpers shared by noise-profile synthesis and by :mod:`lastmile.capture`.

Spectra are one-sided power spectral densities in full-scale units² per Hz, so that
``Σ psd·df`` is the mean square and ``10·log10`` of it the RMS level in dBFS (a full-scale sine
is -3.01 dBFS, as in :func:`lastmile.audio.levels.rms_dbfs`).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft
import scipy.signal

__all__ = [
    "band_edges",
    "band_mean",
    "band_shaped_psd",
    "db",
    "fractional_octave_centres",
    "interp_db_logf",
    "next_fast_len",
    "smooth_unit_process",
    "third_octave_band_powers",
    "welch_psd",
]

_TINY = 1e-30


def db(power: np.ndarray | float | np.floating) -> np.ndarray:
    """``10·log10(power)`` with a floor far below anything audible (-300 dB)."""
    return 10.0 * np.log10(np.maximum(np.asarray(power, dtype=np.float64), _TINY))


def welch_psd(
    samples: np.ndarray, *, sample_rate: int, nperseg: int, average: str = "mean"
) -> tuple[np.ndarray, np.ndarray]:
    """One-sided Welch PSD (Hann, 50 % overlap, no detrending); ``(freqs_hz, psd)``."""
    nperseg = min(int(nperseg), samples.size)
    freqs, psd = scipy.signal.welch(
        samples.astype(np.float64, copy=False),
        fs=sample_rate,
        window="hann",
        nperseg=nperseg,
        noverlap=nperseg // 2,
        detrend=False,
        scaling="density",
        average=average,
    )
    return freqs, psd


def fractional_octave_centres(
    *, bands_per_octave: int, low_hz: float, high_hz: float
) -> np.ndarray:
    """Centres ``1000·2^(k/b)`` Hz whose bands ``[c·2^(-1/2b), c·2^(1/2b)]`` lie in range."""
    b = bands_per_octave
    half = 2.0 ** (1.0 / (2 * b))
    k_low = math.ceil(b * math.log2(low_hz * half / 1000.0) - 1e-9)
    k_high = math.floor(b * math.log2(high_hz / half / 1000.0) + 1e-9)
    return 1000.0 * 2.0 ** (np.arange(k_low, k_high + 1) / b)


def band_mean(
    freqs_hz: np.ndarray, values: np.ndarray, *, low_hz: np.ndarray, high_hz: np.ndarray
) -> np.ndarray:
    """Mean of ``values`` over the bins inside each ``[low, high)`` band.

    A band narrower than one bin takes the value interpolated at its geometric centre.
    """
    cum = np.concatenate([[0.0], np.cumsum(values)])
    lo = np.searchsorted(freqs_hz, low_hz, side="left")
    hi = np.searchsorted(freqs_hz, high_hz, side="left")
    count = hi - lo
    out = np.empty(len(low_hz))
    ok = count > 0
    out[ok] = (cum[hi[ok]] - cum[lo[ok]]) / count[ok]
    if np.any(~ok):
        centre = np.sqrt(low_hz[~ok] * high_hz[~ok])
        out[~ok] = np.interp(centre, freqs_hz, values)
    return out


def band_edges(centres_hz: np.ndarray, *, top_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Band edges for a table of band centres: geometric midpoints between centres; the
    first band reaches as far below its centre as above it, the last ends at ``top_hz``
    at most."""
    c = np.asarray(centres_hz, dtype=np.float64)
    if c.size == 1:
        return c / 2**0.5, np.minimum(c * 2**0.5, top_hz)
    mids = np.sqrt(c[:-1] * c[1:])
    lo = np.concatenate([[c[0] * c[0] / mids[0]], mids])
    hi = np.concatenate([mids, [min(top_hz, c[-1] * c[-1] / mids[-1])]])
    return lo, hi


def band_shaped_psd(
    freqs_hz: np.ndarray, centres_hz: np.ndarray, band_db: np.ndarray, *, top_hz: float
) -> np.ndarray:
    """A PSD on ``freqs_hz`` (uniform grid from 0) from mean band densities (dB).

    Interpolated in dB against log-frequency for a smooth shape, then rescaled band by band
    so each band's mean density is its table value (bands holding fewer than two bins are
    left interpolated): sharp spectral peaks keep their energy in their own band instead of
    spilling into the valleys beside them. Zero at DC and above ``top_hz``.
    """
    f = np.asarray(freqs_hz, dtype=np.float64)
    c = np.asarray(centres_hz, dtype=np.float64)
    target = np.asarray(band_db, dtype=np.float64)
    psd = 10 ** (interp_db_logf(f, c, target) / 10)
    lo, hi = band_edges(c, top_hz=top_hz)
    band = np.searchsorted(hi, f, side="right")
    inside = (f >= lo[0]) & (band < c.size)
    sums = np.bincount(band[inside], weights=psd[inside], minlength=c.size)
    counts = np.bincount(band[inside], minlength=c.size)
    ok = (counts >= 2) & (sums > 0)
    factor = np.ones(c.size)
    factor[ok] = 10 ** (target[ok] / 10) * counts[ok] / sums[ok]
    psd[inside] *= factor[band[inside]]
    psd[(f <= 0) | (f > top_hz)] = 0.0
    return psd


def interp_db_logf(
    freqs_hz: np.ndarray, table_freqs_hz: np.ndarray, table_db: np.ndarray
) -> np.ndarray:
    """Interpolate a dB table linearly in log-frequency, held flat outside its range."""
    f = np.maximum(np.asarray(freqs_hz, dtype=np.float64), float(table_freqs_hz[0]) * 1e-3)
    return np.interp(np.log(f), np.log(np.asarray(table_freqs_hz)), np.asarray(table_db))


def third_octave_band_powers(
    samples: np.ndarray, *, sample_rate: int, low_hz: float = 25.0, high_hz: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Mean-square power in each 1/3-octave band (base-2 centres), ``(centres_hz, power)``.

    From a Welch PSD with about 0.5 Hz resolution; bands run from ``low_hz`` to ``high_hz``
    (default 0.9 × Nyquist).
    """
    top = 0.9 * sample_rate / 2.0 if high_hz is None else high_hz
    nperseg = min(samples.size, 1 << math.ceil(math.log2(2.0 * sample_rate)))
    freqs, psd = welch_psd(samples, sample_rate=sample_rate, nperseg=nperseg)
    centres = fractional_octave_centres(bands_per_octave=3, low_hz=low_hz, high_hz=top)
    half = 2.0 ** (1.0 / 6.0)
    mean_density = band_mean(freqs, psd, low_hz=centres / half, high_hz=centres * half)
    return centres, mean_density * (centres * half - centres / half)


def smooth_unit_process(
    rng: np.random.Generator, *, duration_s: float, timescale_s: float, rate_hz: float
) -> np.ndarray:
    """A smooth zero-mean Gaussian process of unit variance sampled at ``rate_hz``.

    White noise filtered by a Gaussian kernel of standard deviation ``timescale_s / 2``: its
    autocorrelation ``exp(-τ²/timescale_s²)`` falls to 1/e at ``τ = timescale_s``. The
    variance is normalised by the kernel (not by the realisation), so it is unit in
    expectation. Returns ``ceil(duration_s·rate_hz) + 2`` samples (one beyond each end).
    """
    n = math.ceil(duration_s * rate_hz) + 2
    sigma = max(timescale_s / 2.0 * rate_hz, 0.5)
    half = math.ceil(4.0 * sigma)
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma) ** 2)
    kernel /= math.sqrt(float(np.sum(kernel * kernel)))
    white = rng.standard_normal(n + 2 * half)
    return scipy.signal.fftconvolve(white, kernel, mode="valid")[:n]


def next_fast_len(n: int) -> int:
    """A fast real FFT length ≥ ``n``."""
    return int(scipy.fft.next_fast_len(int(n), real=True))
