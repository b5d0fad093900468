"""Each front end's real-time factor per core: processing seconds ÷ audio seconds, one thread.

Prints key=value lines (lower is faster; 0.01 means 100 × faster than real time):
  rtf_<stage>=       median over --repeats passes of the whole utterance set, per stage
  audio_s=           seconds of audio in one pass
Stages: notch (a shipped profile's 6 tones), highpass (order 4), spectral-gate (stationary
and not), rnnoise (16 kHz in, resampled to 48 kHz and back), command (a Python program that
copies its input: the cost of a process and two WAV files per utterance).
Usage: python benchmarks/frontends.py [--utterances N] [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# one thread everywhere (the numbers are per core), before numpy is imported
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from lastmile.audio import mix_at_snr, read_audio  # noqa: E402
from lastmile.frontend import (  # noqa: E402
    CommandSpec,
    HighpassSpec,
    NotchSpec,
    RnnoiseSpec,
    SpectralGateSpec,
    build_stage,
)
from lastmile.profiles.noise_model import profile_search_dirs  # noqa: E402
from lastmile.resources import shipped_dir  # noqa: E402

RATE = 16000
COPY = "import shutil, sys; shutil.copyfile(sys.argv[1], sys.argv[2])\n"


def utterances(n: int) -> list[np.ndarray]:
    folder = shipped_dir("demo_corpus") / "audio"
    rng = np.random.default_rng(0)
    out = []
    for path in sorted(folder.glob("*.flac"))[:n]:
        speech = read_audio(path, sample_rate=RATE).samples
        noise = rng.standard_normal(speech.size).astype(np.float32)
        out.append(mix_at_snr(speech, noise, snr_db=10.0, sample_rate=RATE).mix)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    audio = utterances(args.utterances)
    audio_s = sum(a.size for a in audio) / RATE
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "copy.py"
        copy.write_text(COPY)
        stages = {
            "notch": NotchSpec(type="notch", profile="hospital-imaging-suite"),
            "highpass": HighpassSpec(type="highpass", cutoff_hz=120.0),
            "spectral_gate": SpectralGateSpec(type="spectral-gate"),
            "spectral_gate_nonstationary": SpectralGateSpec(type="spectral-gate", stationary=False),
            "rnnoise": RnnoiseSpec(type="rnnoise"),
            "command": CommandSpec(
                type="command", argv=[sys.executable, str(copy), "{in}", "{out}"]
            ),
        }
        print(f"audio_s={audio_s:.1f}")
        for name, spec in stages.items():
            stage = build_stage(spec, search_dirs=profile_search_dirs())
            stage.apply(audio[0], sample_rate=RATE)  # warm: imports, library load
            passes = []
            for _ in range(args.repeats):
                t0 = time.process_time() if name != "command" else time.perf_counter()
                for a in audio:
                    stage.apply(a, sample_rate=RATE)
                t1 = time.process_time() if name != "command" else time.perf_counter()
                passes.append(t1 - t0)
            print(f"rtf_{name}={statistics.median(passes) / audio_s:.4f}")


if __name__ == "__main__":
    main()
