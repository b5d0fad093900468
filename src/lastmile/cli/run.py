"""`lastmile run`, `lastmile demo`, `lastmile render`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lastmile.cli.common import (
    EXIT_FLAGGED,
    BadInput,
    asr_option,
    default_workers,
    flush_warnings,
    handle_errors,
    progress_reporter,
    quiet_option,
    verbose_option,
)
from lastmile.cli.common import (
    console as make_console,
)

__all__ = ["demo_command", "render_command", "run_command"]


def _finish(result: Any, *, as_json: bool, quiet: bool, flag_exit: bool = True) -> None:
    from rich.markup import escape

    from lastmile.report import print_summary

    summary = result.summary
    flush_warnings()  # the audio conversions, before the results
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        console = make_console()
        print_summary(summary, console)
        console.print(
            f"\n{result.n_items} items ({result.n_cached} from cache, {result.n_failed} failed) "
            f"in {result.wall_s:.1f} s. Run folder: [bold]{escape(str(result.run_dir))}[/bold]"
        )
        if summary.get("latency"):
            from lastmile.report.findings import latency_sentence

            console.print(escape(latency_sentence(summary["latency"])) + ".")
        if result.n_failed:
            console.print(
                f"[yellow]{result.n_failed} item(s) failed and are excluded from WER; "
                f"see the error column of {escape(str(result.run_dir / 'items.csv'))}[/yellow]"
            )
    flags = [c.get("flag") for c in summary.get("analysis", {}).get("conditions", [])]
    if flag_exit and "uneven" in flags:
        raise SystemExit(EXIT_FLAGGED)


def _check_folder(option: str, path: Path | None) -> None:
    if path is not None and path.exists() and not path.is_dir():
        raise BadInput(f"{option} {path}: is a file, not a folder; give a folder")


def _io_bound(asr: str | None) -> bool:
    """Whether ``--asr`` names a remote backend (its requests run on threads in this
    process: no worker pool to start)."""
    if asr is None:
        return False
    try:
        from lastmile.asr import backend_class, parse_backend_spec

        return bool(getattr(backend_class(parse_backend_spec(asr).name), "io_bound", False))
    except Exception:  # a bad spec is reported where the backend is built
        return False


def _execute(
    pack: Path,
    *,
    asr: str | None,
    out: Path | None,
    limit: int | None,
    workers: int,
    resume: Path | None,
    no_cache: bool,
    quiet: bool,
    as_json: bool,
    label: str,
    item_timeout: float | None = None,
    retries: int = 2,
    flag_exit: bool = True,
    absolute_paths: bool = False,
    conditions: tuple[str, ...] = (),
    executor: str | None = None,
    ray_address: str | None = None,
    ship_audio: bool = False,
) -> None:
    if ray_address is not None and executor == "local":
        raise BadInput("--ray-address: only with --executor ray")
    if ship_audio and executor == "local":
        raise BadInput("--ship-audio: only with --executor ray")
    if ray_address is not None or ship_audio:
        executor = "ray"
    if workers > 1 and not _io_bound(asr) and executor != "ray":
        from lastmile.forkserver import pool_context

        pool_context(asr or "faster-whisper")  # its imports overlap the engine's below
    from lastmile.run import RunOptions, run_pack

    if limit is not None and limit < 1:
        raise BadInput(f"--limit: expected a positive number of utterances, got {limit}")
    if workers < 1:
        raise BadInput(f"--workers: expected at least 1, got {workers}")
    if item_timeout is not None and item_timeout <= 0:
        raise BadInput(f"--item-timeout: expected seconds > 0, got {item_timeout}")
    _check_folder("--out", out)
    _check_folder("--resume", resume)
    # named if the run is interrupted
    click.get_current_context().find_root().meta["lastmile.run_dir"] = resume or out
    update, close = progress_reporter(quiet=quiet or as_json, label=label)
    try:
        result = run_pack(
            pack,
            RunOptions(
                asr=asr,
                out=out,
                limit=limit,
                workers=workers,
                resume=resume,
                use_cache=not no_cache,
                item_timeout_s=item_timeout,
                retries=retries,
                absolute_paths=absolute_paths,
                conditions=_condition_ids(conditions),
                executor=executor,
                ray_address=ray_address,
                ship_audio=ship_audio,
            ),
            on_progress=update,
        )
    finally:
        close()
    _finish(result, as_json=as_json, quiet=quiet, flag_exit=flag_exit)


def _condition_ids(values: tuple[str, ...]) -> tuple[str, ...] | None:
    """``--conditions a,b --conditions c`` as ``("a", "b", "c")``; ``None`` when not given."""
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    if values and not ids:
        raise BadInput("--conditions: expected condition ids (e.g. --conditions hum60_snr5)")
    return tuple(dict.fromkeys(ids)) or None


def _run_options(func: Any) -> Any:
    for option in reversed(
        [
            asr_option,
            click.option(
                "--out",
                type=click.Path(path_type=Path),
                default=None,
                help="Run folder (default: lastmile-runs/PACK-TIMESTAMP).",
            ),
            click.option(
                "--limit",
                type=int,
                default=None,
                metavar="N",
                help="At most N utterances, taken round-robin across groups.",
            ),
            click.option(
                "--workers",
                "-j",
                type=int,
                default=None,
                help="Worker processes, or Ray actors with --executor ray (default: the "
                "number of cores here).",
            ),
            click.option(
                "--executor",
                type=click.Choice(["local", "ray"]),
                default=None,
                help="Decode on this machine's cores (local) or on a Ray cluster (ray: one "
                'actor per worker; needs pip install "lastmile[ray]"). Default: the pack\'s '
                "run.executor, else local.",
            ),
            click.option(
                "--ray-address",
                default=None,
                metavar="ADDR",
                help="With --executor ray: the cluster's head (HOST:PORT, ray://HOST:PORT or "
                "auto); default: a local Ray started for the run.",
            ),
            click.option(
                "--ship-audio",
                is_flag=True,
                help="With --executor ray: send the audio, noise and profile data through "
                "Ray's object store (workers that cannot read this machine's files).",
            ),
            click.option(
                "--conditions",
                "conditions",
                multiple=True,
                metavar="ID[,ID…]",
                help="Run only these conditions (repeatable or comma-separated; clean is "
                "always run).",
            ),
            click.option(
                "--resume",
                type=click.Path(path_type=Path),
                default=None,
                metavar="RUN_DIR",
                help="Continue a killed run in RUN_DIR.",
            ),
            click.option(
                "--no-cache", is_flag=True, help="Do not read or write the transcript cache."
            ),
            click.option(
                "--item-timeout",
                type=float,
                default=None,
                metavar="SECONDS",
                help="Give up on an item whose decoding takes longer (retried, then recorded "
                "as failed).",
            ),
            click.option(
                "--retries",
                type=click.IntRange(0, 20),
                default=2,
                show_default=True,
                help="Times a failed item (an error, a timeout, a worker that died on it) is "
                "decoded again before it is recorded as failed (when a batch of an "
                "utterance's items fails, each is first decoded alone once).",
            ),
            quiet_option,
            verbose_option,
            click.option(
                "--json", "as_json", is_flag=True, help="Print summary.json instead of the table."
            ),
        ]
    ):
        func = option(func)
    return func


@click.command("run")
@click.argument("pack", type=click.Path(path_type=Path))
@_run_options
@click.option(
    "--absolute-paths",
    is_flag=True,
    help="Also record the absolute paths of the pack, the manifest and the run folder in "
    "run.json (by default every output shows them relative, for sharing).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the items, the audio minutes to send and, for a backend with a price list "
    "(aws-transcribe), the estimated cost; render, decode and send nothing.",
)
@handle_errors
def run_command(
    pack: Path,
    asr: str | None,
    out: Path | None,
    limit: int | None,
    workers: int | None,
    resume: Path | None,
    no_cache: bool,
    quiet: bool,
    as_json: bool,
    item_timeout: float | None,
    retries: int,
    absolute_paths: bool,
    dry_run: bool,
    conditions: tuple[str, ...],
    executor: str | None,
    ray_address: str | None,
    ship_audio: bool,
) -> None:
    """Run scenario PACK: render every utterance under every condition, decode, score,
    analyse, and write a run folder (items.csv, summary.json, report.html).

    Exit code 0 when no condition is flagged uneven, 1 when one is, 2 for bad input,
    3 for a runtime failure.

    \b
    Example:
      lastmile run scenarios/hospital-imaging.yaml --asr pocketsphinx --limit 20
    """
    if dry_run:
        from lastmile.cli.dryrun import print_dry_run

        print_dry_run(
            pack,
            asr=asr,
            limit=limit,
            no_cache=no_cache,
            as_json=as_json,
            conditions=_condition_ids(conditions),
        )
        return
    _execute(
        pack,
        asr=asr,
        out=out,
        limit=limit,
        workers=workers or default_workers(),
        resume=resume,
        no_cache=no_cache,
        item_timeout=item_timeout,
        retries=retries,
        quiet=quiet,
        as_json=as_json,
        label=pack.stem,
        absolute_paths=absolute_paths,
        conditions=conditions,
        executor=executor,
        ray_address=ray_address,
        ship_audio=ship_audio,
    )


@click.command("demo")
@_run_options
@handle_errors
def demo_command(
    asr: str | None,
    out: Path | None,
    limit: int | None,
    workers: int | None,
    resume: Path | None,
    no_cache: bool,
    quiet: bool,
    as_json: bool,
    item_timeout: float | None,
    retries: int,
    conditions: tuple[str, ...],
    executor: str | None,
    ray_address: str | None,
    ship_audio: bool,
) -> None:
    """Run the shipped demo pack on the shipped demo corpus (synthetic voices standing in
    for accent groups) with the default offline ASR, and print WER per condition × group.
    Unlike `run`, it exits 0 when conditions are flagged: showing them is its point.

    \b
    Example:
      lastmile demo --out demo-run
    """
    from lastmile.resources import shipped_pack

    _execute(
        shipped_pack("demo"),
        asr=asr,
        out=out,
        limit=limit,
        workers=workers or default_workers(),
        resume=resume,
        no_cache=no_cache,
        item_timeout=item_timeout,
        retries=retries,
        quiet=quiet,
        as_json=as_json,
        label="demo",
        flag_exit=False,
        conditions=conditions,
        executor=executor,
        ray_address=ray_address,
        ship_audio=ship_audio,
    )


@click.command("render")
@click.argument("pack", type=click.Path(path_type=Path))
@click.option("--condition", "-c", "condition_id", required=True, help="Condition id.")
@click.option("--utterance", "-u", "utterance_id", required=True, help="Utterance id.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--stems", is_flag=True, help="Also write speech.wav and noise.wav.")
@handle_errors
def render_command(
    pack: Path, condition_id: str, utterance_id: str, out: Path, stems: bool
) -> None:
    """Render one item to listen to: mix.wav (what the ASR hears, at the render rate before
    the final resample to the backend's rate), and with --stems speech.wav and noise.wav (the
    noise exactly as added, before device and channel), plus item.json with every drawn
    parameter, the target and the achieved SNR.

    \b
    Example:
      lastmile render scenarios/demo.yaml -c hum60_snr5 -u us-slt-01 --out item --stems
    """
    from lastmile.render import render_item, write_item

    _check_folder("--out", out)
    example = render_item(pack, condition_id, utterance_id)
    for note in example.notes:
        click.echo(f"warning: {example.utterance.audio}: {note}", err=True)
    for path in write_item(example, out, stems=stems):
        click.echo(str(path))
