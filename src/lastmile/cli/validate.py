"""`lastmile validate` and `lastmile schema`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from lastmile.cli.common import (
    EXIT_BAD_INPUT,
    conversion_kind,
    handle_errors,
    summarize_conversions,
    verbose_enabled,
    verbose_option,
)

__all__ = ["schema_command", "validate_command"]

# check_corpus's warnings for audio that will be converted (see corpus/validate.py)
_CONVERSION = re.compile(
    r": (?:(?P<channels>\d+) channels; it will be downmixed to mono"
    r"|(?P<from_hz>\d+) Hz; it will be resampled to (?P<to_hz>\d+) Hz)"
)


@click.command("validate")
@click.argument("pack", type=click.Path(path_type=Path))
@click.option(
    "--asr",
    default=None,
    metavar="SPEC",
    help="Check this backend spec instead of the pack's (built as `lastmile run` builds it).",
)
@verbose_option
@handle_errors
def validate_command(pack: Path, asr: str | None) -> None:
    """Check PACK, its corpus (every row and every audio file), its noise files, profiles
    and devices, and its backend, listing every problem at once. Exit 2 if any is found.

    \b
    Example:
      lastmile validate scenarios/call-center.yaml
    """
    from lastmile.run import validate_pack

    report = validate_pack(pack, asr=asr)
    converted: dict[str, set[str]] = {}
    for w in report.warnings:
        m = _CONVERSION.search(w)
        if m and not verbose_enabled():  # counted by kind, said in one line below
            note = (
                f"downmixed {m['channels']} channels to mono"
                if m["channels"]
                else f"resampled {m['from_hz']} Hz to {m['to_hz']} Hz"
            )
            converted.setdefault(conversion_kind(note), set()).add(w[: m.start()])
            continue
        click.echo(f"warning: {w}" if not w.startswith("warning") else w, err=True)
    if converted:
        line = summarize_conversions(converted)
        click.echo(f"warning: {line}; --verbose lists them", err=True)
    if not report.ok:
        for text in report.problems:
            click.echo(text, err=True)
        click.echo(f"{len(report.problems)} problem(s) found in {pack}", err=True)
        raise SystemExit(EXIT_BAD_INPUT)
    click.echo(
        f"{pack}: ok — {report.n_conditions} conditions (incl. clean), "
        f"{report.n_utterances} utterances, {report.n_speakers} "
        f"speaker{'' if report.n_speakers == 1 else 's'}, "
        f"{len(report.groups)} group{'' if len(report.groups) == 1 else 's'} "
        f"({', '.join(report.groups)})"
    )


@click.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of a scenario pack.

    \b
    Example:
      lastmile schema > pack.schema.json
    """
    from lastmile.scenario.pack import pack_json_schema

    click.echo(json.dumps(pack_json_schema(), indent=2))
