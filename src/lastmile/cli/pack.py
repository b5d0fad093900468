"""`lastmile pack export|import`: a scenario pack and what it uses as one portable archive."""

from __future__ import annotations

from pathlib import Path

import click

from lastmile.cli.common import handle_errors

__all__ = ["command"]


def _size(n: int) -> str:
    if n < 1000:
        return f"{n} B"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:.1f} {unit}"


@click.group("pack")
def command() -> None:
    """Move a scenario pack between machines as one archive (.lmpack).

    \b
    Example:
      lastmile pack export scenarios/ward3.yaml --out ward3.lmpack
      lastmile pack import ward3.lmpack --into ward3 --audio-from ../ward-corpus
    """


@command.command("export")
@click.argument("pack", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Archive to write (conventionally NAME.lmpack).",
)
@click.option(
    "--with-audio",
    is_flag=True,
    help="Put the corpus's speech audio in the archive too (otherwise only its checksums).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing archive.")
@handle_errors
def export_command(pack: Path, out: Path, with_audio: bool, force: bool) -> None:
    """Write PACK, the noise and device profiles and noise files it uses, and its corpus
    manifest (with the SHA-256 of every audio file) as one archive. The speech audio goes in
    only with --with-audio: speech is personal data, so by default it stays where it is.

    \b
    Example:
      lastmile pack export scenarios/ward3.yaml --out ward3.lmpack
      lastmile pack export scenarios/ward3.yaml --out ward3-full.lmpack --with-audio
    """
    from lastmile.sitepack import export_pack

    result = export_pack(pack, out=out, with_audio=with_audio, force=force)
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    audio = (
        f"with its {result.audio_files} audio files"
        if result.audio_included
        else f"without audio ({result.audio_files} audio files listed with their checksums; "
        "add --with-audio to include them)"
    )
    click.echo(
        f"wrote {result.path}: {result.members} files, {_size(result.total_bytes)} before "
        f"compression, {audio}"
    )


@command.command("import")
@click.argument("archive", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--into",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="New or empty folder to unpack into.",
)
@click.option(
    "--audio-from",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder holding the corpus audio at the paths of the manifest's audio column (the "
    "folder the original manifest was in); each file is checked against its checksum and "
    "copied in.",
)
@handle_errors
def import_command(archive: Path, into: Path, audio_from: Path | None) -> None:
    """Unpack ARCHIVE (from `lastmile pack export`) into a new or empty folder, checking
    every file against the archive's checksums. Links, device files, absolute paths, '..'
    and oversized members are refused, and nothing in the archive is run.

    \b
    Example:
      lastmile pack import ward3.lmpack --into ward3
      lastmile pack import ward3.lmpack --into ward3 --audio-from ../ward-corpus
    """
    from lastmile.sitepack import import_pack

    result = import_pack(archive, into=into, audio_from=audio_from)
    for warning in result.warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    click.echo(f"imported {result.members} files into {into}; the pack is {result.pack_path}")
    if result.audio_copied:
        click.echo(f"copied {result.audio_copied} audio files from {audio_from} (checksums match)")
    missing = result.missing_audio
    if not missing:
        click.echo(f"check it with: lastmile validate {result.pack_path}")
        return
    corpus_dir = result.corpus_manifest.parent
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    click.secho(
        f"{len(missing)} of {result.audio_files} audio files are not here (the archive was "
        f"exported without --with-audio): {shown}.\n"
        "The pack cannot run until they are. Either import again into a new folder, pointing "
        "at the corpus:\n"
        f"  lastmile pack import {archive} --into NEW_FOLDER --audio-from CORPUS_FOLDER\n"
        "(CORPUS_FOLDER holds them at the paths above; each is checked against its "
        f"checksum), or copy them under {corpus_dir}/ at those paths. The list is the audio "
        f"column of {result.corpus_manifest}.",
        fg="yellow",
        err=True,
    )
