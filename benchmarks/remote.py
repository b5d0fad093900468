"""Remote (I/O-bound) backends: does one lastmile process keep `concurrency` requests in flight?

A loopback OpenAI-compatible server (``lastmile.testing_server``, in a process of its own so it
takes no time from the harness's interpreter) answers every request with a fixed transcript
after an injected latency L, so the figure measures the harness: planning, rendering, the run
store and the request threads. A real `run_pack` over the demo corpus (clean + one hum
condition: 2 items per utterance), one process, no cache.

Prints key=value lines:

  items=              items decoded
  latency_s=          the injected latency L
  concurrency=        requests in flight the backend allows
  ideal_items_per_s=  concurrency / L
  items_per_s=        items / time from the first to the last finished item
  throughput_ratio=   items_per_s / ideal_items_per_s (goal >= 0.9 at concurrency 16)
  wall_items_per_s=   items / the whole run (pack loading, model-free startup and reports off)
  server_requests=    requests the server answered (one per item: no retries)

Usage: python benchmarks/remote.py [--concurrency 16] [--latency 0.5] [--utterances 160]
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from lastmile.resources import shipped_pack
from lastmile.run import RunOptions, run_pack
from lastmile.testing_server import TranscriptionServer


def _pack(folder: Path, utterances: int) -> Path:
    demo = shipped_pack("demo")
    data = yaml.safe_load(demo.read_text())
    manifest = (demo.parent / data["corpus"]["manifest"]).resolve()
    pack = {
        "name": "remote-bench",
        "seed": 1,
        "corpus": {"manifest": str(manifest)},
        "conditions": [
            {"id": "hum10", "noise": {"type": "hum", "fundamental_hz": 60}, "snr_db": 10}
        ],
    }
    path = folder / "remote-bench.yaml"
    path.write_text(yaml.safe_dump(pack, sort_keys=False))
    return path


def _serve(latency_s: float, ready: Any, stop: Any) -> None:
    with TranscriptionServer(text="the patient is fine", latency_s=latency_s) as server:
        ready.put(server.base_url)
        stop.wait()
        ready.put(sum(1 for status, _, _ in server.requests if status == 200))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--utterances", type=int, default=160)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lastmile-remote-bench-") as tmp:
        pack = _pack(Path(tmp), args.utterances)
        finished: list[float] = []

        def progress(p) -> None:
            if p.done > (len(finished)):
                finished.extend([time.perf_counter()] * (p.done - len(finished)))

        mp = multiprocessing.get_context("spawn")
        ready, stop = mp.Queue(), mp.Event()
        server = mp.Process(target=_serve, args=(args.latency, ready, stop), daemon=True)
        server.start()
        try:
            base_url = ready.get(timeout=60)
            spec = f"openai:{base_url}?model=bench&concurrency={args.concurrency}"
            t0 = time.perf_counter()
            result = run_pack(
                pack,
                RunOptions(
                    asr=spec,
                    out=Path(tmp) / "run",
                    limit=args.utterances,
                    workers=1,
                    use_cache=False,
                    reports=False,
                    examples_per_condition=0,
                ),
                on_progress=progress,
            )
            wall = time.perf_counter() - t0
            stop.set()
            answered = ready.get(timeout=30)
        finally:
            stop.set()
            server.join(timeout=10)
    ideal = args.concurrency / args.latency
    span = (finished[-1] - finished[0]) if len(finished) > 1 else wall
    # the first item finishes one latency after the start of steady state: count it in
    items_per_s = (result.n_items - 1) / span if span > 0 else float("nan")
    print(f"items={result.n_items}")
    print(f"failed={result.n_failed}")
    print(f"latency_s={args.latency:g}")
    print(f"concurrency={args.concurrency}")
    print(f"ideal_items_per_s={ideal:.2f}")
    print(f"items_per_s={items_per_s:.2f}")
    print(f"throughput_ratio={items_per_s / ideal:.3f}")
    print(f"wall_items_per_s={result.n_items / wall:.2f}")
    print(f"server_requests={answered}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
