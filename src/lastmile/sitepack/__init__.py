"""Portable packs: one archive (``.lmpack``) holding a scenario pack and everything it uses.

:func:`export_pack` writes the pack (its paths rewritten to point inside the archive), the
noise and device profiles and noise files it uses, and the corpus as one CSV manifest with
the SHA-256 of every audio file; the speech audio itself only when asked. :func:`import_pack`
reads such an archive into a folder: every member is checked (listed in the archive's
manifest, a plain file with a safe relative name, within the size limits, its checksum
right) before anything is moved into place, and nothing in it is executed.
"""

from lastmile.sitepack.archive import (
    ARCHIVE_MANIFEST,
    FORMAT_VERSION,
    ExportResult,
    ImportLimits,
    ImportResult,
    export_pack,
    import_pack,
)

__all__ = [
    "ARCHIVE_MANIFEST",
    "FORMAT_VERSION",
    "ExportResult",
    "ImportLimits",
    "ImportResult",
    "export_pack",
    "import_pack",
]
