"""`lastmile asr list` and `lastmile asr check`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from lastmile.cli.common import handle_errors

__all__ = ["check_command", "command", "list_command"]


@click.group("asr")
def command() -> None:
    """ASR backends (entry-point group lastmile.asr)."""


@command.command("list")
def list_command() -> None:
    """Show installed backends and whether they can run here.

    \b
    Example:
      lastmile asr list
    """
    from rich.table import Table
    from rich.text import Text

    from lastmile.asr import available_backends
    from lastmile.cli.common import console

    table = Table("backend", "usable", "details", "entry point")
    for info in available_backends():  # Text: "pip install 'lastmile[x]'" is not markup
        cells = (info.name, "yes" if info.usable else "no", info.detail, info.target)
        table.add_row(*(Text(str(cell)) for cell in cells))
    console().print(table)


def _demo_clip() -> tuple[Path, str]:
    """The first utterance of the shipped demo corpus (by id) and its transcript."""
    from lastmile.corpus import load_manifest
    from lastmile.resources import shipped_dir

    corpus = load_manifest(shipped_dir("demo_corpus") / "manifest.csv")
    first = min(corpus.utterances, key=lambda u: u.id)
    return Path(first.audio), first.text


@command.command("check")
@click.argument("spec")
@click.option(
    "--audio",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Clip to decode (any file soundfile reads; resampled to the backend's rate, said "
    "loudly). Default: the first clip of the shipped demo corpus.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead.")
@handle_errors
def check_command(spec: str, audio: Path | None, as_json: bool) -> None:
    """Build the backend SPEC as `lastmile run` would, decode one clip and print the
    transcript, the latency and the fingerprint (the transcript cache key).

    Exit 2 when the spec is bad (an unknown backend or parameter, a missing model or
    program), 3 when the backend fails at run time (it cannot load or decode).

    \b
    Examples:
      lastmile asr check faster-whisper
      lastmile asr check 'command-server:python examples/backends/faster_whisper_server.py'
      lastmile asr check my-plugin:/models/x?beam=5 --audio clip.wav --json
    """
    from lastmile.asr import build_backend
    from lastmile.audio import read_audio
    from lastmile.errors import BackendError

    reference: str | None = None
    if audio is None:
        audio, reference = _demo_clip()
    t0 = time.perf_counter()
    backend: Any = build_backend(spec)
    build_s = time.perf_counter() - t0
    try:
        clip = read_audio(audio, sample_rate=backend.sample_rate)
        outputs, latencies = [], []
        for _ in range(2):  # the first call may load the model; the second is the decode
            t1 = time.perf_counter()
            outputs.append(_one_transcript(backend, backend.transcribe([clip.samples])))
            latencies.append(time.perf_counter() - t1)
        text = outputs[0]
        first_s, latency_s = latencies
        fingerprint = backend.fingerprint()
        if not isinstance(fingerprint, str) or not fingerprint:
            raise BackendError(
                f"{backend.name}: fingerprint() must return a non-empty string (the model, "
                f"its version and the decoding parameters), got {fingerprint!r}"
            )
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    duration_s = len(clip.samples) / clip.sample_rate
    result = {
        "backend": backend.name,
        "spec": spec,
        "audio": str(audio),
        "duration_s": round(duration_s, 3),
        "sample_rate": backend.sample_rate,
        "transcript": text,
        "reference": reference,
        "latency_s": round(latency_s, 4),
        "first_latency_s": round(first_s, 4),
        "deterministic": outputs[0] == outputs[1],
        "real_time_factor": round(latency_s / duration_s, 4),
        "build_s": round(build_s, 4),
        "fingerprint": fingerprint,
    }
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    click.echo(f"backend:     {backend.name} ({backend.sample_rate} Hz), built in {build_s:.2f} s")
    click.echo(f"audio:       {audio} ({duration_s:.2f} s)")
    if reference is not None:
        click.echo(f"reference:   {reference}")
    click.echo(f"transcript:  {text}")
    click.echo(f"latency:     {latency_s:.3f} s (real-time factor {latency_s / duration_s:.3f})")
    click.echo(f"first call:  {first_s:.3f} s (model loading included, where it is lazy)")
    if outputs[0] != outputs[1]:
        click.echo(
            f"warning: the second decode of the same clip differed ({outputs[1]!r}); the "
            "transcript cache assumes a backend gives the same text for the same audio",
            err=True,
        )
    click.echo(f"fingerprint: {fingerprint}")


def _one_transcript(backend: Any, texts: Any) -> str:
    """The one transcript of a one-clip call; BackendError when the plugin broke the
    protocol (not a list of one string)."""
    from lastmile.errors import BackendError

    if not isinstance(texts, list | tuple) or len(texts) != 1:
        raise BackendError(
            f"{backend.name}: transcribe() must return a list of one transcript per clip; "
            f"for one clip it returned {texts!r}"
        )
    if not isinstance(texts[0], str):
        raise BackendError(
            f"{backend.name}: transcribe() must return strings; it returned {texts[0]!r} "
            f"({type(texts[0]).__name__})"
        )
    return texts[0]
