"""Run-engine costs on a fixed slice of the demo pack. Prints key=value lines:

  overhead_ratio=  harness wall time (1 worker, cold) / the backend alone on the same audio
                   (its model load included: the harness cannot decode without it either)
  speedup_2w=      1-worker wall time / 2-worker wall time (cold)
  rerun_ratio=     warm-cache rerun / cold run (2 workers)
  vs_naive=        naive script (benchmarks/naive_loop.py) / lastmile cold (2 workers)
  peak_rss_mb=     peak resident memory of this process and its workers
  ceiling_2w=      the machine's own limit for speedup_2w: the backend alone on the rendered
                   audio in one process / the same audio split over two processes decoding
                   at once (no harness at all); cores that slow each other down (shared
                   cache and memory bandwidth) put it below 2

The backend-alone figures decode under the process settings lastmile uses
(lastmile.tuning), so overhead_ratio and ceiling_2w measure the harness and the machine;
the naive script runs as a user would write it, without them.
  efficiency_2w=   speedup_2w / ceiling_2w: the share of that limit the harness reaches
  speedup_2w_cli=  the same ratio for `lastmile run` as a user types it (whole commands,
                   Python's start and imports included; the CLI starts the workers' fork
                   server while it imports the engine)

Usage: python benchmarks/engine.py [--limit 14]
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from naive_loop import naive_run

from lastmile.asr import build_backend
from lastmile.render.engine import Renderer
from lastmile.resources import shipped_pack
from lastmile.run import RunOptions, run_pack
from lastmile.run.plan import load_pack_corpus
from lastmile.scenario.pack import load_pack
from lastmile.tuning import configure_worker, decoding_heap, worker_environment


def rendered_slice(limit: int) -> list[np.ndarray]:
    """The slice's items rendered at the backend's rate, in plan order."""
    loaded = load_pack(shipped_pack("demo"))
    corpus = load_pack_corpus(loaded, limit=limit)
    backend = build_backend("faster-whisper")
    renderer = Renderer(loaded, sample_rate=backend.sample_rate)
    audios = []
    for utt in corpus.utterances:
        speech, _ = renderer.load_speech(utt.audio)
        audios += [renderer.render(speech, c, utterance_id=utt.id).audio for c in loaded.conditions]
    return audios


def decode_seconds(audios: list[np.ndarray], barrier: Any = None) -> float:
    """Seconds the default backend alone takes for ``audios``, its model load included, with
    the process settings lastmile decodes under (lastmile.tuning): in a worker process for
    the rest of its life, here only while decoding."""
    if barrier is not None:
        configure_worker()
        barrier.wait()
    t0 = time.perf_counter()
    backend = build_backend("faster-whisper")
    with decoding_heap():
        for audio in audios:
            backend.transcribe([audio])
        return time.perf_counter() - t0


def two_processes(audios: list[np.ndarray]) -> float:
    """Wall seconds for two processes decoding the two halves of ``audios`` at once."""
    mp = multiprocessing.get_context("spawn")
    with mp.Manager() as manager, worker_environment():
        barrier = manager.Barrier(2)
        with ProcessPoolExecutor(2, mp_context=mp) as pool:
            halves = [audios[0::2], audios[1::2]]
            futures = [pool.submit(decode_seconds, half, barrier) for half in halves]
            return max(f.result() for f in futures)


def cli_seconds(out: Path, limit: int, workers: int) -> float:
    """Wall seconds of a whole `lastmile run` command on the slice (no cache)."""
    command = [sys.executable, "-m", "lastmile", "run", str(shipped_pack("demo"))]
    command += ["--limit", str(limit), "--workers", str(workers), "--no-cache", "--quiet"]
    t0 = time.perf_counter()
    done = subprocess.run([*command, "--out", str(out)], check=False, capture_output=True)
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):  # 1: a condition flagged uneven, a normal outcome
        raise SystemExit(f"lastmile run failed ({done.returncode}): {done.stderr.decode()}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=14)
    args = parser.parse_args()
    pack = shipped_pack("demo")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache.sqlite"

        def run(name: str, workers: int, use_cache: bool) -> float:
            t0 = time.perf_counter()
            run_pack(
                pack,
                RunOptions(
                    out=Path(tmp) / name,
                    limit=args.limit,
                    workers=workers,
                    use_cache=use_cache,
                    cache_path=cache,
                ),
            )
            return time.perf_counter() - t0

        audios = rendered_slice(args.limit)
        alone = decode_seconds(audios)
        split = two_processes(audios)
        one = run("w1", 1, use_cache=False)
        two = run("w2", 2, use_cache=True)  # cold: the cache is empty, and is filled
        warm = run("warm", 2, use_cache=True)
        naive, n_items, _wer = naive_run(args.limit)
        cli_one = cli_seconds(Path(tmp) / "cli1", args.limit, 1)
        cli_two = cli_seconds(Path(tmp) / "cli2", args.limit, 2)
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"items={n_items}")
    print(f"backend_alone_s={alone:.1f}")
    print(f"backend_two_processes_s={split:.1f}")
    print(f"wall_1w_s={one:.1f}")
    print(f"wall_2w_s={two:.1f}")
    print(f"wall_warm_s={warm:.2f}")
    print(f"naive_s={naive:.1f}")
    print(f"overhead_ratio={one / alone:.3f}")
    print(f"speedup_2w={one / two:.2f}")
    print(f"rerun_ratio={warm / two:.3f}")
    print(f"vs_naive={naive / two:.2f}")
    print(f"peak_rss_mb={max(rss_self, rss_children):.0f}")
    print(f"ceiling_2w={alone / split:.2f}")
    print(f"efficiency_2w={(one / two) / (alone / split):.2f}")
    print(f"wall_1w_cli_s={cli_one:.1f}")
    print(f"wall_2w_cli_s={cli_two:.1f}")
    print(f"speedup_2w_cli={cli_one / cli_two:.2f}")


if __name__ == "__main__":
    main()
