#!/usr/bin/env python3
"""A lastmile ``command-server`` adapter for a Hugging Face speech model in a local folder,
loaded with ``transformers.pipeline("automatic-speech-recognition")``: CTC models (wav2vec2,
HuBERT, WavLM) and Whisper. The model loads once, then each request line is decoded alone
(no batching, so a transcript never depends on its batch mates).

    lastmile run pack.yaml \\
        --asr 'command-server:python examples/backends/transformers_server.py --model models/w2v2'

Protocol (JSON lines): print ``{"ready": true}`` once loaded; for each request
``{"id": ID, "wav": PATH}`` on standard input answer ``{"id": ID, "text": TEXT}`` (or
``{"id": ID, "error": WHY}``) on standard output. Everything else goes to standard error.

Nothing is downloaded: the folder must hold what ``save_pretrained`` writes (config, weights,
feature extractor, tokenizer). Greedy decoding; Whisper models get ``--max-new-tokens``
(default 128) as their cap; CTC models are decoded greedily from the pipeline's model and
processor with special tokens skipped (see ``ctc_greedy``), which gives the built-in
``transformers`` backend's transcripts. Needs ``pip install torch transformers soundfile``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder only, never the network
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def protocol_stream():
    """Standard output kept for protocol lines only: file descriptor 1 is pointed at standard
    error, so a library that prints (from Python or C) cannot break the protocol."""
    stream = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return stream


def ctc_greedy(asr, audio, rate: int) -> str:
    """A CTC model's greedy transcript: the pipeline's model and processor, but decoded with
    the special tokens skipped before repeats are merged (the pipeline's own CTC decoding
    keeps them: '<s>' and '<unk>' land in the text, and 'u <s> u' stays two letters)."""
    inputs = asr.feature_extractor(audio, sampling_rate=rate, return_tensors="pt")
    values = inputs.input_values.to(device=asr.model.device, dtype=asr.model.dtype)
    ids = asr.model(values).logits.argmax(dim=-1)[0].cpu()
    return str(asr.tokenizer.decode(ids, skip_special_tokens=True))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="folder written by save_pretrained")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--max-new-tokens", type=int, default=128)
    args = parser.parse_args()
    out = protocol_stream()
    if not os.path.isfile(os.path.join(args.model, "config.json")):
        print(f"transformers_server: {args.model}: no config.json there", file=sys.stderr)
        return 2

    import soundfile as sf
    import torch
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=args.model, device=args.device)
    whisper = asr.model.config.model_type == "whisper"
    generate = {"max_new_tokens": args.max_new_tokens, "num_beams": 1, "do_sample": False}
    rate = asr.feature_extractor.sampling_rate
    print(f"transformers_server: loaded {args.model}", file=sys.stderr, flush=True)
    out.write(json.dumps({"ready": True, "sample_rate": rate}) + "\n")

    for line in sys.stdin:
        try:
            request = json.loads(line)
            request_id, wav = request["id"], request["wav"]
        except (ValueError, KeyError, TypeError) as exc:
            print(f"transformers_server: bad request {line!r}: {exc}", file=sys.stderr)
            return 2  # lastmile restarts the program and fails that item
        try:
            audio, file_rate = sf.read(wav, dtype="float32")
            if audio.ndim != 1 or file_rate != rate:
                raise ValueError(
                    f"expected mono audio at {rate} Hz (the model's rate; set the backend's "
                    f"sample_rate to it), got shape {audio.shape} at {file_rate} Hz"
                )
            with torch.inference_mode():
                if whisper:
                    result = asr({"raw": audio, "sampling_rate": rate}, generate_kwargs=generate)
                    text = str(result["text"])
                else:
                    text = ctc_greedy(asr, audio, rate)
            answer = {"id": request_id, "text": text.strip()}
        except Exception as exc:  # this file failed; the program goes on
            answer = {"id": request_id, "error": f"{type(exc).__name__}: {exc}"}
        out.write(json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
