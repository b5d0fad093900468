"""Temporary files stay in the run folder: ``command`` backends and front ends write the audio
they hand to a program under ``RUN_DIR/.scratch``, which the run removes when it ends and a
resumed run empties first (what a ``kill -9`` left)."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

import lastmile.scratch
from lastmile.run import RunOptions, run_pack

from helpers import demo_rows, demo_subset_pack

# A recognizer program: logs where it was handed its audio (and its TMPDIR), answers a phrase.
PROGRAM = """
import os, sys
with open(os.path.join(sys.argv[2], os.urandom(8).hex()), "w") as log:
    where = os.path.dirname(os.path.abspath(sys.argv[1]))
    log.write(where + "\\t" + os.environ.get("TMPDIR", "") + "\\n")
print("take one capsule twice a day")
"""

# A front-end program: logs the same, copies its input to its output.
FRONTEND = """
import os, shutil, sys
with open(os.path.join(sys.argv[3], os.urandom(8).hex()), "w") as log:
    where = os.path.dirname(os.path.abspath(sys.argv[1]))
    log.write(where + "\\t" + os.environ.get("TMPDIR", "") + "\\n")
shutil.copyfile(sys.argv[1], sys.argv[2])
"""


def _pack(folder: Path, log: Path) -> Path:
    """A pack whose programs log into the folder ``log`` (a folder: a file named in a
    command's argv would be part of the backend's fingerprint)."""
    folder.mkdir(parents=True)
    log.mkdir()
    (folder / "asr.py").write_text(PROGRAM)
    (folder / "enhance.py").write_text(FRONTEND)
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    return demo_subset_pack(
        folder,
        rows,
        asr=f"command:{sys.executable} {folder / 'asr.py'} {{wav}} {log}",
        conditions=[{"noise": "pink", "snr_db": 5}],
        frontend={
            "copy": [
                {
                    "type": "command",
                    "argv": [sys.executable, str(folder / "enhance.py"), "{in}", "{out}", str(log)],
                }
            ]
        },
        fairness={"min_speakers": 2},
    )


def _logged(log: Path) -> list[tuple[str, str]]:
    lines = [f.read_text().rstrip("\n") for f in sorted(log.iterdir())]
    return [tuple(line.split("\t")) for line in lines]  # type: ignore[misc]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("workers", [1, 2])
def test_programs_get_their_files_and_tmpdir_inside_the_run_folder(tmp_path: Path, workers):
    log = tmp_path / "programs"
    pack = _pack(tmp_path / "pack", log)
    out = tmp_path / "run"
    before = (tempfile.tempdir, os.environ.get("TMPDIR"))
    result = run_pack(pack, RunOptions(out=out, workers=workers, use_cache=False, reports=False))
    assert result.n_failed == 0
    scratch = str((out / ".scratch").resolve())
    logged = _logged(log)
    # 4 utterances × (clean, pink, clean+copy, pink+copy) decodes, 4 × 2 front-end runs, and
    # the front end again for the run's example clips
    assert len(logged) >= 4 * 4 + 4 * 2
    for folder, tmpdir in logged:
        assert str(Path(folder).resolve()).startswith(scratch + os.sep), folder
        assert str(Path(tmpdir).resolve()) == scratch
    assert not (out / ".scratch").exists()  # removed with the run's end
    # this process's own settings are untouched, its scratch folder unset again
    assert (tempfile.tempdir, os.environ.get("TMPDIR")) == before
    assert lastmile.scratch.current() is None


@pytest.mark.timeout(300)
def test_a_resumed_run_empties_what_a_killed_one_left(tmp_path: Path):
    log = tmp_path / "programs"
    pack = _pack(tmp_path / "pack", log)
    out = tmp_path / "run"
    run_pack(pack, RunOptions(out=out, workers=1, use_cache=False, reports=False))
    left = out / ".scratch" / "lastmile-cmd-x1" / "item0.wav"  # as a kill -9 leaves it
    left.parent.mkdir(parents=True)
    left.write_bytes(b"RIFF")
    run_pack(pack, RunOptions(resume=out, workers=1, use_cache=False, reports=False))
    assert not (out / ".scratch").exists()
