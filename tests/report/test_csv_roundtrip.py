"""Names that items.csv guards against spreadsheet formulas come back as written in the
analysis and the reports."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lastmile.run import RunOptions, run_pack

from helpers import demo_rows, demo_subset_pack


def test_formula_like_groups_and_speakers_survive_items_csv(tmp_path: Path):
    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    for row in rows:
        row["accent"] = "+gb" if row["accent"] == "gb-rp" else "=us"
        row["speaker"] = "@" + row["speaker"]
    pack = demo_subset_pack(tmp_path / "pack", rows, fairness={"min_speakers": 2})
    script = tmp_path / "asr.py"
    script.write_text("print('the patient is well')\n")
    result = run_pack(
        pack,
        RunOptions(
            asr=f"command:{sys.executable} {script} {{wav}}",
            out=tmp_path / "run",
            use_cache=False,
        ),
    )
    csv_text = (result.run_dir / "items.csv").read_text()
    assert "'+gb" in csv_text and "'=us" in csv_text  # neutralized in the file
    summary = json.loads((result.run_dir / "summary.json").read_text())
    text = json.dumps(summary)
    assert "'+gb" not in text and "'=us" not in text and "'@" not in text
    clean = next(c for c in summary["analysis"]["conditions"] if c["id"] == "clean")
    assert {cell["group"] for cell in clean["groups"]} == {"+gb", "=us"}


def test_lastmile_report_never_follows_a_planted_link(tmp_path: Path):
    """``lastmile report`` rewrites summary.json, summary.md and report.html through fresh
    temporary files: a link planted at a report's name or its old temp name is refused or left
    alone, and its target is never written."""
    import pytest

    from lastmile.errors import ConfigError
    from lastmile.report import write_reports

    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    pack = demo_subset_pack(tmp_path / "pack", rows, fairness={"min_speakers": 2})
    script = tmp_path / "asr.py"
    script.write_text("print('the patient is well')\n")
    run_dir = tmp_path / "run"
    run_pack(
        pack,
        RunOptions(asr=f"command:{sys.executable} {script} {{wav}}", out=run_dir, use_cache=False),
    )
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (run_dir / "summary.json.tmp").symlink_to(target)
    write_reports(run_dir)
    assert target.read_text() == "keep me"
    (run_dir / "report.html").unlink()
    (run_dir / "report.html").symlink_to(target)
    with pytest.raises(ConfigError, match="report.html"):
        write_reports(run_dir)
    assert target.read_text() == "keep me"


def test_a_200_kb_transcript_and_a_garbled_items_csv(tmp_path: Path):
    """A transcript past csv's 128 KiB field limit is analysed and reported; an items.csv
    that is not UTF-8 is bad input naming the file (exit 2), not a crash."""
    from click.testing import CliRunner

    from lastmile.cli import cli

    rows = demo_rows(groups=("us", "gb-rp"), per_group=2)
    rows[0]["text"] = " ".join(["word"] * 40_000)  # 200 KB
    pack = demo_subset_pack(tmp_path / "pack", rows, fairness={"min_speakers": 2})
    script = tmp_path / "asr.py"
    script.write_text("print('word word')\n")
    run_dir = tmp_path / "run"
    asr = f"command:{sys.executable} {script} {{wav}}"
    args = ["run", str(pack), "--asr", asr, "--out", str(run_dir), "--no-cache", "-q", "-j", "1"]
    done = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert done.exit_code in (0, 1), done.output
    summary = json.loads((run_dir / "summary.json").read_text())
    clean = next(c for c in summary["analysis"]["conditions"] if c["id"] == "clean")
    assert sum(cell["n_ref_words"] for cell in clean["groups"]) > 40_000
    (run_dir / "items.csv").write_bytes(b"item_id,condition_id\n\xff\xfe\x00garbled\n")
    again = CliRunner().invoke(cli, ["report", str(run_dir)], catch_exceptions=False)
    assert again.exit_code == 2, again.output
    assert "items.csv" in again.output and "UTF-8" in again.output
