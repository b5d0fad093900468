"""`lastmile init [CORPUS]`: survey a corpus and write a commented starter pack."""

from __future__ import annotations

from pathlib import Path

import click

from lastmile.cli.common import BadInput, handle_errors

__all__ = ["command"]


def _column_pairs(values: tuple[str, ...]) -> dict[str, str]:
    columns: dict[str, str] = {}
    for value in values:
        ours, sep, theirs = value.partition("=")
        if not sep or ours not in ("id", "audio", "text", "speaker") or not theirs:
            raise BadInput(
                f"--column {value!r}: expected OURS=THEIRS with OURS one of id, audio, text, "
                "speaker, e.g. --column speaker=spk_id"
            )
        columns[ours] = theirs
    return columns


@click.command("init")
@click.argument("corpus", required=False, type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("site.yaml"),
    show_default=True,
    help="Pack file to write; the corpus path in it is relative to this file.",
)
@click.option("--group-by", default=None, help="Group column (default: detected).")
@click.option(
    "--column",
    "column_pairs",
    multiple=True,
    metavar="OURS=THEIRS",
    help="Name a manifest column the detection misses, e.g. --column speaker=spk_id.",
)
@click.option("--name", default=None, help="The pack's name (default: from the corpus).")
@click.option("--force", is_flag=True, help="Overwrite an existing pack file.")
@handle_errors
def command(
    corpus: Path | None,
    out: Path,
    group_by: str | None,
    column_pairs: tuple[str, ...],
    name: str | None,
    force: bool,
) -> None:
    """Write a commented starter pack for CORPUS (a manifest, a Kaldi data dir or a folder
    of wav+txt; default: the one in the current folder). The corpus format, its columns,
    the group column and the speakers per group are detected and checked against the pack's
    min_speakers; the site's profiles (noise_profiles/ beside the pack) become conditions and
    the shipped ones are listed as comments. An existing file is kept unless --force.

    \b
    Example:
      lastmile init data/manifest.csv --out ward3.yaml
      lastmile init data/kaldi/test --group-by accent --out ward3.yaml
    """
    from lastmile.scenario.starter import (
        find_corpus,
        find_profiles,
        starter_pack_text,
        survey_corpus,
        write_starter_pack,
    )

    if out.exists() and not force:
        raise BadInput(f"{out}: already exists; choose another --out, or pass --force")
    source = corpus if corpus is not None else find_corpus(Path.cwd())
    survey = survey_corpus(source, group_by=group_by, columns=_column_pairs(column_pairs))
    mapped = ", ".join(f"{k} = {v}" for k, v in survey.columns.items())
    click.echo(
        f"corpus: {survey.source} ({survey.format}): {survey.utterances} utterances, "
        f"{survey.speakers} speakers" + (f"; columns {mapped}" if mapped else "")
    )
    others = [c for c in survey.group_candidates if c != survey.group_by]
    click.echo(
        f"groups by '{survey.group_by}': {len(survey.groups)}"
        + (f" (other possible group columns: {', '.join(others)})" if others else "")
    )
    width = max(len(g.name) for g in survey.groups)
    for g in survey.groups:
        note = (
            f"  needs {g.speakers_short} more speaker{'s' if g.speakers_short > 1 else ''}"
            if g.speakers_short
            else ""
        )
        click.echo(
            f"  {g.name:<{width}}  {g.speakers:>4} speakers {g.utterances:>6} utterances{note}"
        )
    short = survey.short_groups
    if len(survey.groups) < 2:
        hint = (
            f"--group-by {others[0]}"
            if others
            else "--group-by COLUMN (a column that names each speaker's accent or dialect)"
        )
        click.secho(
            f"warning: '{survey.group_by}' puts every speaker in one group "
            f"({survey.groups[0].name!r}); lastmile compares groups, so every condition's "
            f"verdict will be insufficient-data. Add the other groups' speakers, or use {hint}.",
            fg="yellow",
            err=True,
        )
    elif short:
        click.secho(
            f"warning: {len(short)} of {len(survey.groups)} groups have fewer than "
            f"min_speakers = {survey.min_speakers} speakers; their verdicts will be "
            "insufficient-data until they have more (a group of one speaker is never "
            "compared). Add speakers, merge groups, or lower fairness.min_speakers knowingly.",
            fg="yellow",
            err=True,
        )
    else:
        click.echo(
            f"every group has at least min_speakers = {survey.min_speakers} speakers; a run "
            "says `inconclusive` (with the speakers that would decide) when they are too few "
            "to tell"
        )
    profiles = find_profiles(out.parent, also=[Path("noise_profiles")])
    text = starter_pack_text(survey, pack_path=out, profiles=profiles, name=name)
    write_starter_pack(text, out, force=force)
    site = len(profiles.site_noise) + len(profiles.site_devices)
    click.echo(
        f"wrote {out}: {site} site profile(s) as conditions, plus hum, pink noise and a "
        f"G.711 handset; {len(profiles.shipped_noise) + len(profiles.shipped_devices)} "
        "shipped profiles listed as comments"
    )
    for path in profiles.elsewhere:
        click.secho(
            f"warning: {path} is not where the pack looks (noise_profiles/ beside {out}); "
            "move it there to use it",
            fg="yellow",
            err=True,
        )
    click.echo(f"next: lastmile validate {out}")
