"""`lastmile pack export|import` through the command line."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

from click.testing import CliRunner

from lastmile.cli import cli
from lastmile.resources import shipped_dir, shipped_pack


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_demo_pack_travels_and_validates(tmp_path: Path):
    out = tmp_path / "demo.lmpack"
    code, stdout, _ = _run("pack", "export", str(shipped_pack("demo")), "--out", str(out))
    assert code == 0, stdout
    assert "280 audio files listed with their checksums" in stdout

    code, stdout, stderr = _run("pack", "import", str(out), "--into", str(tmp_path / "bare"))
    assert code == 0
    assert "280 of 280 audio files are not here" in stderr
    assert "--audio-from CORPUS_FOLDER" in stderr and "audio/caribbean-f2-04.flac" in stderr
    code, _, stderr = _run("validate", str(tmp_path / "bare" / "demo.yaml"))
    assert code == 2 and "caribbean-f2-04.flac" in stderr  # validate names the missing audio

    code, stdout, _ = _run(
        "pack",
        "import",
        str(out),
        "--into",
        str(tmp_path / "full"),
        "--audio-from",
        str(shipped_dir("demo_corpus")),
    )
    assert code == 0 and "copied 280 audio files" in stdout
    code, stdout, stderr = _run("validate", str(tmp_path / "full" / "demo.yaml"))
    assert code == 0, stderr
    assert "280 utterances, 28 speakers, 7 groups" in stdout


def test_export_refuses_to_overwrite_and_import_refuses_a_link(tmp_path: Path):
    out = tmp_path / "demo.lmpack"
    out.write_bytes(b"mine")
    code, _, stderr = _run("pack", "export", str(shipped_pack("demo")), "--out", str(out))
    assert code == 2 and "--force" in stderr and out.read_bytes() == b"mine"

    bad = tmp_path / "bad.lmpack"
    with tarfile.open(bad, "w:gz") as tar:
        head = json.dumps(
            {
                "format": "lastmile-pack",
                "version": 1,
                "pack": "p.yaml",
                "corpus_manifest": "p.yaml",
                "members": [{"path": "p.yaml", "size": 0, "sha256": "0" * 64}],
            }
        ).encode()
        info = tarfile.TarInfo("lastmile-pack.json")
        info.size = len(head)
        tar.addfile(info, io.BytesIO(head))
        link = tarfile.TarInfo("p.yaml")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    code, _, stderr = _run("pack", "import", str(bad), "--into", str(tmp_path / "in"))
    assert code == 2
    assert "member 'p.yaml' is a symbolic link (to '/etc/passwd')" in stderr
    assert not (tmp_path / "in").exists()
