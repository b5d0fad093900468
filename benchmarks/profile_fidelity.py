#!/usr/bin/env python3
"""How faithful and how fast are the shipped profiles? Prints one line per profile.

Usage:
    python benchmarks/profile_fidelity.py [--seconds 120] [--sample-rate 48000] [--only NAME ...]
        [--fresh-seed N] [--asr SPEC --utterances 280 --repeats 1]

Noise profiles: each shipped profile's simulated source recording is made again exactly as
``tools/make_profiles.py`` made it (same site, same seed), then compared with a synthesis
from the profile (``lastmile profiles compare``'s figures), and the capture and the
synthesis are timed (× real time: seconds of audio per second of compute).

``--fresh-seed N`` compares with a new recording of the same site instead (another stretch
of the same noise, as a second visit would record it): the realistic-recording check, since
the profile never saw it. ``--asr`` adds the WER figures (the demo subset mixed at 10 dB
with the recording and with the synthesis; ``wer_diff_se`` says how well the difference is
resolved).

Device profiles: the shipped response against the designed filter it was measured from
(largest error over the usable band) and the minimum-phase replay against the table.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import scipy.signal as ss

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import make_profiles  # noqa: E402  (the generator of the shipped profiles)
from sitesim import SITES, simulate_site  # noqa: E402  (tools/sitesim.py)

from lastmile.capture.fidelity import asr_wer_figures, compare_profile  # noqa: E402
from lastmile.capture.noise import capture_noise_profile  # noqa: E402
from lastmile.profiles.device_model import MeasuredDeviceResponse, load_device_profile  # noqa: E402
from lastmile.profiles.noise_model import load_noise_profile  # noqa: E402
from lastmile.profiles.synthesis import ProfileNoise  # noqa: E402
from lastmile.resources import shipped_dir  # noqa: E402


def noise_line(
    name: str,
    *,
    seconds: float,
    sample_rate: int,
    fresh_seed: int | None = None,
    asr: str | None = None,
    utterances: int = 280,
    repeats: int = 1,
    asr_seed: int = 0,
) -> str:
    folder = shipped_dir("noise_profiles")
    profile = load_noise_profile(name, search_dirs=[folder])
    seed = make_profiles._seed(name) if fresh_seed is None else fresh_seed
    source = simulate_site(
        SITES[name],
        np.random.default_rng(seed),
        seconds=seconds,
        sample_rate=sample_rate,
    )
    start = time.perf_counter()
    capture_noise_profile(source, sample_rate=sample_rate, name=name)
    capture_x = seconds / (time.perf_counter() - start)
    gen = ProfileNoise(profile)
    n = source.size
    start = time.perf_counter()
    gen.render(
        gen.draw(np.random.default_rng(0), n_samples=n, sample_rate=sample_rate),
        n_samples=n,
        sample_rate=sample_rate,
    )
    synth_x = seconds / (time.perf_counter() - start)
    fidelity = compare_profile(profile, source, sample_rate=sample_rate, seed=1)
    figures = " ".join(fidelity.lines())
    if asr is not None:
        wer = asr_wer_figures(
            profile,
            source,
            sample_rate=sample_rate,
            asr_spec=asr,
            n_utterances=utterances,
            repeats=repeats,
            seed=asr_seed,
        )
        figures += " " + " ".join(wer.lines())
    return f"{name:24s} {figures} capture_x_realtime={capture_x:.0f} synth_x_realtime={synth_x:.0f}"


def device_line(name: str) -> str:
    folder = shipped_dir("noise_profiles")
    profile = load_device_profile(name, search_dirs=[folder])
    fs = profile.source.sample_rate_hz
    sos, _ = make_profiles._design(name, fs)
    f = np.asarray(profile.response.freqs_hz)
    g = np.asarray(profile.response.gain_db)
    lo, hi = profile.usable_band_hz
    band = (f >= lo) & (f <= hi)
    _, h = ss.sosfreqz(sos, worN=f, fs=fs)
    true = 20 * np.log10(np.abs(h))
    true -= float(np.interp(np.log(profile.response.reference_freq_hz), np.log(f), true))
    err = float(np.max(np.abs(g[band] - true[band])))
    taps = MeasuredDeviceResponse(profile).taps(sample_rate=16000)
    f16 = f[band & (f < 7600)]
    _, hr = ss.freqz(taps, worN=f16, fs=16000)
    replay = float(np.max(np.abs(20 * np.log10(np.abs(hr)) - np.interp(f16, f, g))))
    thd = (
        dict(zip(profile.distortion.freqs_hz, profile.distortion.values, strict=True))
        if profile.distortion
        else {}
    )
    return (
        f"{name:24s} usable_band_hz={lo:.0f}-{hi:.0f} max_response_err_db={err:.2f} "
        f"replay_err_db={replay:.2f} thd_1khz_pct={thd.get(1000.0, float('nan')):.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--sample-rate", type=int, default=make_profiles.SAMPLE_RATE_HZ)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--fresh-seed", type=int, default=None)
    parser.add_argument("--asr", default=None)
    parser.add_argument("--utterances", type=int, default=280)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--asr-seed", type=int, default=0)
    args = parser.parse_args(argv)
    for name in SITES:
        if not args.only or name in args.only:
            line = noise_line(
                name,
                seconds=args.seconds,
                sample_rate=args.sample_rate,
                fresh_seed=args.fresh_seed,
                asr=args.asr,
                utterances=args.utterances,
                repeats=args.repeats,
                asr_seed=args.asr_seed,
            )
            print(line, flush=True)
    if args.fresh_seed is not None:
        return 0
    for name in make_profiles.DEVICES:
        if not args.only or name in args.only:
            print(device_line(name), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
