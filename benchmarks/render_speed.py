"""Render throughput and the ASR's share of `lastmile demo` wall time.

Prints key=value lines:
  render_x_realtime=  audio seconds rendered per wall second on one core (all demo conditions)
  asr_share=          fraction of a cold `lastmile demo` run's worker time spent in the backend
Usage: python benchmarks/render_speed.py [--utterances N] [--demo-limit N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lastmile.render.engine import Renderer
from lastmile.resources import shipped_pack
from lastmile.run import RunOptions, run_pack
from lastmile.run.plan import load_pack_corpus
from lastmile.scenario.pack import load_pack


def render_speed(n_utterances: int) -> tuple[float, int]:
    loaded = load_pack(shipped_pack("demo"))
    corpus = load_pack_corpus(loaded, limit=n_utterances)
    renderer = Renderer(loaded, sample_rate=16000, render_rate=loaded.pack.render_sample_rate)
    for cond in loaded.conditions:
        renderer.validate_condition(cond)
    speech = [renderer.load_speech(u.audio)[0] for u in corpus.utterances]
    audio_s = 0.0
    t0 = time.perf_counter()
    for utt, clean in zip(corpus.utterances, speech, strict=True):
        for cond in loaded.conditions:
            item = renderer.render(clean, cond, utterance_id=utt.id)
            audio_s += item.audio.size / item.sample_rate
    return audio_s / (time.perf_counter() - t0), len(speech) * len(loaded.conditions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--utterances", type=int, default=28)
    parser.add_argument(
        "--demo-limit",
        type=int,
        default=None,
        help="limit the demo run to N utterances (default: the whole demo)",
    )
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    x_rt, n_items = render_speed(args.utterances)
    print(f"render_items={n_items}")
    print(f"render_x_realtime={x_rt:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        result = run_pack(
            shipped_pack("demo"),
            RunOptions(
                out=Path(tmp) / "run", limit=args.demo_limit, workers=args.workers, use_cache=False
            ),
        )
    share = result.backend_s / (result.wall_s * args.workers)
    print(f"demo_items={result.n_items}")
    print(f"demo_wall_s={result.wall_s:.1f}")
    print(f"demo_workers={args.workers}")
    print(f"asr_share={share:.3f}")


if __name__ == "__main__":
    main()
