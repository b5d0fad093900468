"""Nothing escapes the run folder: safe names, no link followed, shareable paths, CSV cells
a spreadsheet cannot run."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from plugin_backends import SLOW, install_plugin

from lastmile.cli import cli
from lastmile.errors import ConfigError
from lastmile.run import RunOptions, run_pack
from lastmile.run.files import (
    confined_path,
    csv_cell,
    csv_uncell,
    ensure_dir,
    open_atomic,
    safe_component,
    write_bytes_atomic,
    write_text_atomic,
    write_with,
)

from helpers import demo_rows, demo_subset_pack


class _Echo:
    name = "echo"
    sample_rate = 16000

    def fingerprint(self) -> str:
        return "echo/1"

    def transcribe(self, batch):
        return ["take one capsule twice a day"] * len(batch)


@pytest.mark.parametrize(
    "name",
    ["..", ".", "../../etc/passwd", "/etc/passwd", "a\0b", "x" * 500, "", ".hidden", "é/ü", "a b"],
)
def test_safe_component_is_one_plain_name(name: str):
    safe = safe_component(name)
    assert 0 < len(safe) <= 100
    assert safe not in (".", "..") and not safe.startswith(".")
    assert all(c.isascii() and (c.isalnum() or c in "._+-") for c in safe)
    assert safe != name  # every one of these had to change
    assert safe_component(name) == safe  # the same name, the same file


def test_safe_component_keeps_plain_names_and_different_names_apart():
    assert safe_component("us-slt-01") == "us-slt-01"
    assert safe_component("utt_42.v2+x") == "utt_42.v2+x"
    names = ["a/b", "a_b", "a\\b", "a:b", "a" * 300, "a" * 301]
    assert len({safe_component(n) for n in names}) == len(names)


def test_confined_path_stays_inside(tmp_path: Path):
    for name in ("../../x", "/abs/x", "..", "a/../../b"):
        path = confined_path(tmp_path, "examples", name, suffix=".flac")
        assert path.parent == tmp_path / "examples"
        assert path.name.endswith(".flac") and len(path.name) <= 100


def test_ensure_dir_and_writers_refuse_links(tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "run"
    root.mkdir()
    (root / "examples").symlink_to(outside)
    with pytest.raises(ConfigError, match="examples: is a symbolic link"):
        ensure_dir(root, "examples", "clean")
    assert list(outside.iterdir()) == []
    target = outside / "precious.txt"
    target.write_text("keep me")
    (root / "run.json").symlink_to(target)
    with pytest.raises(ConfigError, match=r"run\.json: is a symbolic link"):
        write_text_atomic(root / "run.json", "{}")
    assert target.read_text() == "keep me"
    assert sorted(p.name for p in root.iterdir()) == ["examples", "run.json"]  # no temp left


def test_csv_cells_a_spreadsheet_would_run_are_neutralized():
    for text in ('=HYPERLINK("http://x","y")', "+1", "-2", "@SUM(A1)", "\tx", "\rx"):
        assert csv_cell(text) == "'" + text
        assert csv_uncell(csv_cell(text)) == text
    for text in ("plain", "'quoted", "1-2", ""):
        assert csv_cell(text) == text
        assert csv_uncell(text) == text


HOSTILE_IDS = ["../../escaped", "/tmp/lastmile-absolute-escape", "l" * 300]


@pytest.fixture
def hostile_pack(tmp_path: Path) -> Path:
    rows = demo_rows(groups=("us", "gb-rp", "caribbean"), per_group=2)
    # the first utterance of each group gets a hostile id: those become the example clips
    firsts = [0, 2, 4]
    for index, new_id in zip(firsts, HOSTILE_IDS, strict=True):
        rows[index]["id"] = new_id
    for row in rows:
        if row["accent"] == "us":
            row["speaker"] = '=HYPERLINK("http://evil.example","' + row["speaker"] + '")'
        if row["accent"] == "gb-rp":
            row["accent"] = "+gb"
    return demo_subset_pack(
        tmp_path / "pack",
        rows,
        fairness={"min_speakers": 2},
        conditions=[{"noise": "pink", "snr_db": -5}],
    )


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_hostile_ids_and_names_stay_inside_the_run_folder(hostile_pack: Path, tmp_path: Path):
    Path("/tmp/lastmile-absolute-escape.flac").unlink(missing_ok=True)
    before = _tree(tmp_path)
    out = tmp_path / "run"
    run_pack(hostile_pack, RunOptions(out=out, use_cache=False), backend=_Echo())
    new = _tree(tmp_path) - before
    assert new and all(p.is_relative_to(out) for p in new), sorted(new)
    assert not Path("/tmp/lastmile-absolute-escape.flac").exists()
    clips = sorted((out / "examples").rglob("*.flac"))
    assert len(clips) == 6  # 3 utterances × (clean, pink at -5 dB)
    assert {c.parent.name for c in clips} == {"clean", "pink_snrm5"}
    assert all(len(c.name) <= 100 for c in clips)
    index = json.loads((out / "examples" / "index.json").read_text())
    assert {e["utterance_id"] for e in index} == set(HOSTILE_IDS)
    assert all((out / e["path"]).resolve().is_relative_to(out.resolve()) for e in index)
    # items.csv: formula-like text neutralized, numbers (a negative SNR) still numbers
    with (out / "items.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    us = [r for r in rows if "HYPERLINK" in r["speaker"]]
    assert us and all(r["speaker"].startswith("'=HYPERLINK(") for r in us)
    assert {r["group"] for r in rows} == {"us", "'+gb", "caribbean"}
    noisy = [r for r in rows if r["condition_id"] == "pink_snrm5"]
    assert {float(r["target_snr_db"]) for r in noisy} == {-5.0}
    assert all(r["target_snr_db"].startswith("-5") for r in noisy)


def test_planted_links_are_not_followed(tmp_path: Path):
    rows = demo_rows(groups=("us",), per_group=2)
    pack = demo_subset_pack(tmp_path / "pack", rows, fairness={"min_speakers": 2})
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    # a link at the items.csv temp name: never opened, so never followed
    out = tmp_path / "run"
    out.mkdir()
    (out / "items.csv.tmp").symlink_to(target)
    run_pack(pack, RunOptions(out=out, use_cache=False), backend=_Echo())
    assert target.read_text() == "keep me"
    assert (out / "items.csv").is_file() and not (out / "items.csv").is_symlink()
    # a link at a name the run writes: refused before anything is written
    for name in ("run.json", "items.csv", "summary.json", "report.html", "examples"):
        out = tmp_path / f"run-{name}"
        out.mkdir()
        (out / name).symlink_to(target)
        with pytest.raises(ConfigError, match=f"{name}: is a symbolic link"):
            run_pack(pack, RunOptions(out=out, use_cache=False), backend=_Echo())
        assert target.read_text() == "keep me"
        assert [p.name for p in out.iterdir()] == [name]
    # a link planted in a finished run folder: --resume refuses it too
    done = tmp_path / "run"
    os.unlink(done / "run.json")
    (done / "run.json").symlink_to(target)
    with pytest.raises(ConfigError, match=r"run\.json: is a symbolic link"):
        run_pack(pack, RunOptions(resume=done, use_cache=False), backend=_Echo())
    assert target.read_text() == "keep me"


def test_shareable_outputs_carry_no_absolute_paths(tmp_path: Path):
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    broken = tmp_path / "pack" / "audio" / "broken.flac"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"fLaC but not really")
    rows[0] = {**rows[0], "audio": str(broken)}
    pack = demo_subset_pack(
        tmp_path / "pack", rows, fairness={"min_speakers": 2}, run={"max_failed_share": 0.5}
    )
    out = tmp_path / "run"
    run_pack(pack, RunOptions(out=out, use_cache=False), backend=_Echo())
    meta = json.loads((out / "run.json").read_text())
    assert meta["pack"]["path"] == "pack.yaml"
    assert meta["corpus"]["manifest"] == "manifest.csv"
    assert "paths" not in meta
    for name in ("run.json", "items.csv", "summary.json", "summary.md", "report.html"):
        text = (out / name).read_text()
        assert str(tmp_path) not in text, name
    with (out / "items.csv").open(newline="") as fh:
        errors = [r["error"] for r in csv.DictReader(fh) if r["error"]]
    assert errors and all("audio/broken.flac" in e for e in errors)
    # on request, run.json (only) records where things were
    again = tmp_path / "again"
    run_pack(pack, RunOptions(out=again, use_cache=False, absolute_paths=True), backend=_Echo())
    paths = json.loads((again / "run.json").read_text())["paths"]
    assert paths["pack"] == str(pack.resolve())
    assert paths["run_dir"] == str(again.resolve())


@pytest.mark.timeout(300)
def test_the_cli_records_absolute_paths_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    install_plugin(tmp_path / "site", monkeypatch, "slow", SLOW.replace("SLOW_S", "0.0"), "Slow")
    rows = demo_rows(groups=("us",), per_group=2)
    pack = demo_subset_pack(tmp_path / "pack", rows, fairness={"min_speakers": 2})
    args = ["--asr", "slow", "--workers", "1", "--no-cache", "-q"]
    for flag, out in (([], tmp_path / "plain"), (["--absolute-paths"], tmp_path / "abs")):
        result = CliRunner().invoke(
            cli, ["run", str(pack), "--out", str(out), *args, *flag], catch_exceptions=False
        )
        assert result.exit_code in (0, 1), result.output
    plain = json.loads((tmp_path / "plain" / "run.json").read_text())
    assert "paths" not in plain and str(tmp_path) not in json.dumps(plain)
    absolute = json.loads((tmp_path / "abs" / "run.json").read_text())
    assert absolute["paths"]["pack"] == str(pack.resolve())
    assert absolute["paths"]["manifest"] == str((pack.parent / "manifest.csv").resolve())


def test_a_command_backend_in_the_pack_folder_is_named_relative_to_it(tmp_path: Path):
    rows = demo_rows(groups=("us",), per_group=2)
    folder = tmp_path / "pack"
    pack = demo_subset_pack(folder, rows, fairness={"min_speakers": 2})
    script = folder / "tools" / "my_asr.py"
    script.parent.mkdir()
    script.write_text("print('take one capsule twice a day')\n")
    spec = f"command:{sys.executable} {script} {{wav}}"
    out = tmp_path / "run"
    run_pack(pack, RunOptions(asr=spec, out=out, use_cache=False))
    backend = json.loads((out / "run.json").read_text())["backend"]
    assert backend["spec"] == f"command:{sys.executable} tools/my_asr.py {{wav}}"
    assert "tools/my_asr.py" in backend["fingerprint"]
    for name in ("run.json", "summary.json", "summary.md", "report.html"):
        assert str(tmp_path) not in (out / name).read_text(), name


def test_atomic_writers_replace_whole_files_or_leave_them_alone(tmp_path: Path):
    target = tmp_path / "items.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="half way"), open_atomic(target) as fh:
        fh.write("new, half written")
        raise RuntimeError("half way")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["items.csv"]  # no temp left behind
    write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    # the library sees a path with the same suffix (soundfile picks the format by it)
    clip = write_with(
        tmp_path / "a.flac", lambda p: p.write_bytes(b"fLaC" if p.suffix == ".flac" else b"")
    )
    assert clip.read_bytes() == b"fLaC"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.flac", "items.csv"]


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current
