"""The Ray executor's costs. Prints key=value lines:

  ray_start_s=          seconds to start a local Ray (2 CPUs) and connect: paid once per run
                        when lastmile starts the Ray, never with --ray-address
  local_2w_s=           the demo slice with the default backend, local pool of 2 workers
  ray_2w_s=             the same slice on Ray with 2 actors (Ray already running, as a
                        cluster would be)
  ray_1w_s=             the same slice on Ray with 1 actor
  ray_overhead_ratio=   ray_2w_s / local_2w_s (goal <= 1.10)
  ray_speedup_2w=       ray_1w_s / ray_2w_s
  driver_peak_rss_mb_N= peak resident memory of the driver process (lastmile itself, not
                        Ray's processes) running N planned items on Ray with 2 actors and a
                        backend that answers at once (0.1 s utterances, so rendering is
                        cheap); flat when it does not grow with N
  items_per_s_N=        the same run's items per second (what the driver, the store and Ray
                        sustain with nothing to decode)

Every run is cold (--no-cache). Usage: python benchmarks/ray_scale.py [--limit 8]
[--sizes 10000,100000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

INSTANT = '''
class Instant:
    """Answers at once: what is left is the harness."""

    name = "instant"
    sample_rate = 16000

    @classmethod
    def from_spec(cls, spec):
        return cls()

    def fingerprint(self):
        return "instant/1"

    def transcribe(self, batch):
        return ["one two three"] * len(batch)
'''


def _install_instant(site: Path) -> None:
    info = site / "instant_asr-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (site / "instant_asr.py").write_text(INSTANT)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: instant-asr\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lastmile.asr]\ninstant = instant_asr:Instant\n")


def _big_pack(folder: Path, n_items: int) -> Path:
    """A pack of ``n_items`` items: 0.1 s utterances, 100 conditions (clean and pink noise
    at 99 SNRs), ``n_items // 100`` utterances in 4 groups."""
    import numpy as np

    from lastmile.audio import write_audio
    from lastmile.testing import write_pack

    n_utt = max(1, n_items // 100)
    rng = np.random.default_rng(1)
    audio = folder / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    rows = ["id,audio,text,speaker,accent"]
    for i in range(n_utt):
        path = audio / f"u{i}.wav"
        samples = (0.1 * np.sin(np.arange(1600) * (0.05 + 0.001 * i))).astype(np.float32)
        samples += (0.01 * rng.standard_normal(1600)).astype(np.float32)
        write_audio(path, samples, sample_rate=16000)
        rows.append(f"u{i},audio/u{i}.wav,one two three,s{i % 40},g{i % 4}")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    snrs = [round(-8 + 0.5 * k, 1) for k in range(99)]
    return write_pack(
        folder / "pack.yaml",
        name="ray-scale",
        corpus={"manifest": "manifest.csv"},
        conditions=[{"noise": "pink", "snr_db": snrs}],
    )


def driver(pack: str, out: str) -> None:
    """One run on a local Ray with 2 actors (a child process: its peak RSS is measured)."""
    from lastmile.run import RunOptions, run_pack

    t0 = time.perf_counter()
    result = run_pack(
        pack,
        RunOptions(
            asr="instant", out=Path(out), workers=2, executor="ray", use_cache=False, reports=False
        ),
    )
    wall = time.perf_counter() - t0
    print(f"{result.n_items} {result.n_failed} {wall:.3f}")


def _child_rss(args: list[str], env: dict[str, str]) -> tuple[str, float]:
    proc = subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, env=env
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"driver run failed ({status}): {out}")
    return out.strip(), usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=8)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--no-slice", action="store_true", help="only the driver-memory runs")
    parser.add_argument("--driver", nargs=2, metavar=("PACK", "OUT"))
    args = parser.parse_args()
    if args.driver:
        driver(*args.driver)
        return
    import ray

    tmp = Path(tempfile.mkdtemp(prefix="lmbench-"))  # short: Ray's socket paths live under it
    site = tmp / "site"
    _install_instant(site)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    }
    os.environ["PYTHONPATH"] = env["PYTHONPATH"]
    sys.path.insert(0, str(site))

    try:
        if not args.no_slice:
            _slice(ray, tmp, args.limit)
        for size in [int(s) for s in args.sizes.split(",") if s]:
            pack = _big_pack(tmp / f"pack{size}", size)
            line, rss_mb = _child_rss(["--driver", str(pack), str(tmp / f"run{size}")], env)
            n_items, n_failed, wall = line.split()[-3:]
            if int(n_failed):
                raise SystemExit(f"{n_failed} of {n_items} items failed")
            print(f"driver_peak_rss_mb_{n_items}={rss_mb:.0f}")
            print(f"items_per_s_{n_items}={int(n_items) / float(wall):.0f}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _slice(ray: Any, tmp: Path, limit: int) -> None:
    """The demo slice through the local pool and Ray (2 actors, then 1)."""
    from lastmile.resources import shipped_pack
    from lastmile.run import RunOptions, run_pack

    demo = shipped_pack("demo")
    common = {"limit": limit, "use_cache": False, "reports": False}
    local = run_pack(demo, RunOptions(out=tmp / "local", workers=2, **common)).wall_s
    print(f"local_2w_s={local:.2f}", flush=True)

    t0 = time.perf_counter()
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        _temp_dir=str(tmp / "ray"),
    )
    print(f"ray_start_s={time.perf_counter() - t0:.2f}", flush=True)
    try:
        two = run_pack(demo, RunOptions(out=tmp / "r2", workers=2, executor="ray", **common))
        one = run_pack(demo, RunOptions(out=tmp / "r1", workers=1, executor="ray", **common))
    finally:
        ray.shutdown()
    print(f"ray_2w_s={two.wall_s:.2f}")
    print(f"ray_1w_s={one.wall_s:.2f}")
    print(f"ray_overhead_ratio={two.wall_s / local:.3f}")
    print(f"ray_speedup_2w={one.wall_s / two.wall_s:.3f}", flush=True)


if __name__ == "__main__":
    main()
