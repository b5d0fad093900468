"""A program started per item (`command:`) against the same program kept running
(`command-server:`), and both against the built-in backend decoding in-process.

The program is examples/backends/faster_whisper_server.py (tiny.en, one thread): with
``--wav FILE`` it loads the model, decodes one file and exits, which is what `command:` runs
for every item; without it, it loads the model once and answers JSON lines. A second,
model-free program (reads the WAV, prints its length) isolates the cost of the process and
the protocol. Audio: the first ``--clips`` demo utterances (by id), 16 kHz. The three model
modes are timed in turn, ``--passes`` times; each figure is the fastest pass (the machine's
other load only ever adds time).

Prints key=value lines:

  clips=                      items decoded per mode
  audio_s_per_item=           mean clip duration
  builtin_s_per_item=         the built-in faster-whisper backend, in-process, model loaded
  per_item_s_per_item=        command: (a process and a model load per item)
  server_start_s=             command-server: building the backend (start + model load)
  server_s_per_item=          command-server: after the start
  speedup=                    per_item_s_per_item / server_s_per_item
  server_overhead_ratio=      server_s_per_item / builtin_s_per_item (goal <= 1.05)
  trivial_per_item_s=         a model-free Python program started per item
  trivial_server_s_per_item=  the same work in server mode (the protocol's own cost)
  same_transcripts=           command: and command-server: gave identical text (true/false)

Usage: python benchmarks/command_server.py [--clips 8] [--passes 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lastmile.asr import build_backend
from lastmile.audio import read_audio
from lastmile.corpus import load_manifest
from lastmile.resources import shipped_dir

ADAPTER = Path(__file__).resolve().parents[1] / "examples" / "backends" / "faster_whisper_server.py"
TRIVIAL = """
import json, sys
import soundfile as sf
if len(sys.argv) > 1:
    print(sf.info(sys.argv[1]).frames)
    sys.exit(0)
print(json.dumps({"ready": True}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps({"id": req["id"], "text": str(sf.info(req["wav"]).frames)}), flush=True)
"""


def _timed(backend, clips: list[np.ndarray]) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    texts = [backend.transcribe([c])[0] for c in clips]
    return (time.perf_counter() - t0) / len(clips), texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--passes", type=int, default=2)
    args = parser.parse_args()
    corpus = load_manifest(shipped_dir("demo_corpus") / "manifest.csv")
    chosen = sorted(corpus.utterances, key=lambda u: u.id)[: args.clips]
    clips = [read_audio(u.audio, sample_rate=16000).samples for u in chosen]
    python = sys.executable

    builtin = build_backend("faster-whisper")
    builtin.transcribe([clips[0]])  # load the model
    per_item = build_backend(f"command:{python} {ADAPTER} --wav {{wav}}")
    t0 = time.perf_counter()
    server = build_backend(f"command-server:{python} {ADAPTER}")
    server_start_s = time.perf_counter() - t0
    times: dict[str, list[float]] = {"builtin": [], "per_item": [], "server": []}
    try:
        for _ in range(args.passes):  # interleaved, the fastest pass of each kept
            for key, backend in (("builtin", builtin), ("per_item", per_item), ("server", server)):
                took, texts = _timed(backend, clips)
                times[key].append(took)
                if key == "per_item":
                    per_item_texts = texts
                elif key == "server":
                    server_texts = texts
    finally:
        server.close()
    builtin_s, per_item_s, server_s = (min(times[k]) for k in ("builtin", "per_item", "server"))

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "trivial.py"
        script.write_text(TRIVIAL)
        trivial_s, _ = _timed(build_backend(f"command:{python} {script} {{wav}}"), clips)
        trivial_server = build_backend(f"command-server:{python} {script}")
        try:
            trivial_server_s, _ = _timed(trivial_server, clips)
        finally:
            trivial_server.close()

    duration_s = float(np.mean([c.size / 16000 for c in clips]))
    print(f"clips={len(clips)}")
    print(f"audio_s_per_item={duration_s:.2f}")
    print(f"builtin_s_per_item={builtin_s:.3f}")
    print(f"per_item_s_per_item={per_item_s:.3f}")
    print(f"server_start_s={server_start_s:.3f}")
    print(f"server_s_per_item={server_s:.3f}")
    print(f"speedup={per_item_s / server_s:.2f}")
    print(f"server_overhead_ratio={server_s / builtin_s:.3f}")
    print(f"trivial_per_item_s={trivial_s:.3f}")
    print(f"trivial_server_s_per_item={trivial_server_s:.4f}")
    print(f"same_transcripts={str(per_item_texts == server_texts).lower()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
