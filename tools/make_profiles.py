#!/usr/bin/env python3
"""Regenerate the shipped noise and device profiles in ``noise_profiles/``.

Usage:
    python tools/make_profiles.py [--out noise_profiles] [--seconds 120] [--only NAME ...]

Noise profiles: each site in :data:`sitesim.SITES` (``tools/sitesim.py``) (a physical description:
hum and harmonics with drift, coloured broadband noise with resonances and level wander,
trains of knocks, beeps or clunks) is synthesized as a 48 kHz source recording, written to a
temporary WAV file, and profiled by the real ``lastmile capture noise`` command. The sources
are **simulations**, not recordings of real sites; nothing but the profile is kept.

Device profiles: ``lastmile capture sweep`` writes a sweep; it is played through a designed
filter (scipy IIR sections standing in for a handset, a headset and a speakerphone, with a
latency, a noise floor and, for the speakerphone, soft clipping) and the result is profiled
by ``lastmile capture device``.

Also rewrites the JSON Schemas of the profile files (``src/lastmile/schemas``).

Deterministic: one seed per profile, derived from its name.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import scipy.signal
import soundfile as sf
from sitesim import SITES, simulate_site  # tools/sitesim.py, beside this script

from lastmile.cli.capture import device_command, noise_command, sweep_command
from lastmile.profiles.schemas import write_profile_schemas

SAMPLE_RATE_HZ = 48_000


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def _run(command: object, args: list[str]) -> None:
    main = command.main  # type: ignore[attr-defined]
    main(args=args, standalone_mode=False)


def _peaking(freq_hz: float, gain_db: float, q: float, fs: int) -> np.ndarray:
    """RBJ peaking-EQ biquad as one SOS row."""
    a_gain = 10 ** (gain_db / 40)
    w0 = 2 * math.pi * freq_hz / fs
    alpha = math.sin(w0) / (2 * q)
    b = np.array([1 + alpha * a_gain, -2 * math.cos(w0), 1 - alpha * a_gain])
    a = np.array([1 + alpha / a_gain, -2 * math.cos(w0), 1 - alpha / a_gain])
    return np.concatenate([b / a[0], a / a[0]])[None, :]


def _design(name: str, fs: int) -> tuple[np.ndarray, str]:
    def bw(order: int, freq: float, kind: str) -> np.ndarray:
        return scipy.signal.butter(order, freq, kind, fs=fs, output="sos")

    if name == "handset-narrowband":
        sos = np.vstack(
            [bw(4, 290, "highpass"), bw(8, 3500, "lowpass"), _peaking(2600, 3.0, 1.2, fs)]
        )
        return sos, (
            "Telephone handset send path (narrowband, IRS-like): 4th-order high-pass "
            "at 290 Hz, 8th-order low-pass at 3.5 kHz, +3 dB presence at 2.6 kHz."
        )
    if name == "headset":
        sos = np.vstack(
            [bw(2, 110, "highpass"), bw(6, 7200, "lowpass"), _peaking(4000, 3.0, 1.0, fs)]
        )
        return sos, (
            "Wideband headset boom microphone: 2nd-order high-pass at 110 Hz, "
            "6th-order low-pass at 7.2 kHz, +3 dB presence at 4 kHz."
        )
    if name == "conference-speakerphone":
        sos = np.vstack(
            [
                bw(4, 260, "highpass"),
                bw(4, 6200, "lowpass"),
                _peaking(900, 4.0, 3.0, fs),
                _peaking(2800, 5.0, 2.5, fs),
            ]
        )
        return sos, (
            "Conference speakerphone microphone: 4th-order high-pass at 260 Hz, "
            "4th-order low-pass at 6.2 kHz, enclosure resonances at 900 Hz (+4 dB) "
            "and 2.8 kHz (+5 dB), mild soft clipping."
        )
    raise ValueError(name)


def _device_through(name: str, sweep: np.ndarray, fs: int) -> np.ndarray:
    sos, _ = _design(name, fs)
    rng = np.random.default_rng(_seed(name))
    y = scipy.signal.sosfilt(sos, sweep.astype(np.float64))
    if name == "conference-speakerphone":
        y = np.tanh(0.7 * y) / 0.7
    latency = {
        "handset-narrowband": 0.045,
        "headset": 0.021,
        "conference-speakerphone": 0.063,
    }[name]
    floor_dbfs = {
        "handset-narrowband": -78.0,
        "headset": -84.0,
        "conference-speakerphone": -72.0,
    }[name]
    y = np.concatenate([np.zeros(round(latency * fs)), y * 0.7])
    return y + rng.normal(0.0, 10 ** (floor_dbfs / 20), y.size)


def make_noise(out: Path, names: list[str], seconds: float, tmp: Path) -> None:
    for name in names:
        site = SITES[name]
        samples = simulate_site(
            site, np.random.default_rng(_seed(name)), seconds=seconds, sample_rate=SAMPLE_RATE_HZ
        )
        source = tmp / f"{name}-simulated.wav"
        sf.write(str(source), samples, SAMPLE_RATE_HZ, subtype="FLOAT")
        _run(
            noise_command,
            [
                str(source),
                "--name",
                name,
                "--out",
                str(out),
                "--force",
                "--description",
                f"SIMULATED site: {site.description}",
            ],
        )


def make_devices(out: Path, names: list[str], tmp: Path) -> None:
    sweep_path = tmp / "sweep.wav"
    _run(
        sweep_command,
        [
            "--out",
            str(sweep_path),
            "--sample-rate",
            str(SAMPLE_RATE_HZ),
            "--f1-hz",
            "20",
            "--f2-hz",
            "20000",
            "--seconds",
            "10",
        ],
    )
    sweep, fs = sf.read(str(sweep_path), dtype="float64")
    for name in names:
        recording = tmp / f"{name}-recording.wav"
        sf.write(str(recording), _device_through(name, sweep, fs), fs, subtype="FLOAT")
        _, description = _design(name, fs)
        _run(
            device_command,
            [
                "--sweep",
                str(sweep_path),
                "--recording",
                str(recording),
                "--name",
                name,
                "--out",
                str(out),
                "--force",
                "--description",
                f"DESIGNED filter, measured with a sweep: {description}",
            ],
        )


DEVICES = ("handset-narrowband", "headset", "conference-speakerphone")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("noise_profiles"))
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--only", nargs="*", default=None, help="Profile names to remake.")
    args = parser.parse_args(argv)
    wanted: Callable[[str], bool] = (
        (lambda n: True) if not args.only else (lambda n: n in args.only)
    )
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        make_noise(args.out, [n for n in SITES if wanted(n)], args.seconds, tmp)
        make_devices(args.out, [n for n in DEVICES if wanted(n)], tmp)
    (args.out / ".keep").unlink(missing_ok=True)
    schemas = Path(__file__).resolve().parents[1] / "src" / "lastmile" / "schemas"
    for path in write_profile_schemas(schemas):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
