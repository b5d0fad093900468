"""The plain script a user would write instead of lastmile: load each utterance, add noise
with audiomentations, decode with the same backend in a loop, score with jiwer.

Used by benchmarks/engine.py for `vs_naive=`; runnable alone:
  python benchmarks/naive_loop.py --limit 14
"""

from __future__ import annotations

import argparse
import time

import jiwer
import numpy as np
import soundfile as sf
import soxr
from audiomentations import AddColorNoise, AddGaussianSNR, BandPassFilter

from lastmile.asr import build_backend
from lastmile.resources import shipped_pack
from lastmile.run.plan import load_pack_corpus
from lastmile.scenario.pack import load_pack


def naive_run(limit: int | None, asr: str = "faster-whisper") -> tuple[float, int, float]:
    """Returns (wall seconds, items, mean WER) for the demo pack's conditions, approximated
    the way a user would with audiomentations (hum as Gaussian noise, handset as a band-pass)."""
    loaded = load_pack(shipped_pack("demo"))
    corpus = load_pack_corpus(loaded, limit=limit)
    t0 = time.perf_counter()
    backend = build_backend(asr)
    wers = []
    for utt in corpus.utterances:
        audio, rate = sf.read(str(utt.audio), dtype="float32")
        audio = soxr.resample(audio, rate, 16000).astype(np.float32)
        for cond in loaded.conditions:
            x = audio
            if cond.noise is not None and cond.noise.type == "pink":
                x = AddColorNoise(
                    min_snr_db=cond.snr_db,
                    max_snr_db=cond.snr_db,
                    min_f_decay=-3.01,
                    max_f_decay=-3.01,
                    p=1.0,
                )(x, 16000)
            elif cond.noise is not None:
                x = AddGaussianSNR(min_snr_db=cond.snr_db, max_snr_db=cond.snr_db, p=1.0)(x, 16000)
            if cond.device is not None:
                x = BandPassFilter(
                    min_center_freq=1000,
                    max_center_freq=1000,
                    min_bandwidth_fraction=1.5,
                    max_bandwidth_fraction=1.5,
                    p=1.0,
                )(x, 16000)
            hyp = backend.transcribe([x.astype(np.float32)])[0]
            wers.append(jiwer.wer(utt.text.lower(), hyp.lower() or "<empty>"))
    return time.perf_counter() - t0, len(wers), float(np.mean(wers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=14)
    args = parser.parse_args()
    wall, n, wer = naive_run(args.limit)
    print(f"naive_items={n}\nnaive_wall_s={wall:.1f}\nnaive_mean_wer={wer:.3f}")


if __name__ == "__main__":
    main()
