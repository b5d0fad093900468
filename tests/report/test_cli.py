import json

from click.testing import CliRunner

from lastmile.cli.report import command

from ._factory import run_meta, write_run


def test_report_rebuilds_and_exits_1_when_flagged(tmp_path):
    folder = write_run(tmp_path / "r", n_speakers=8)  # 4 speakers x 3 utterances: inconclusive
    result = CliRunner().invoke(command, [str(folder)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "uneven" in result.output
    assert "caribbean" in result.output
    for name in ("summary.json", "summary.md", "report.html"):
        assert (folder / name).is_file()


def test_report_json_and_no_html(tmp_path):
    folder = write_run(tmp_path / "r", examples=False, n_speakers=8)
    result = CliRunner().invoke(
        command, [str(folder), "--json", "--no-html", "--no-md"], catch_exceptions=False
    )
    assert result.exit_code == 1
    summary = json.loads(result.output)
    assert summary["schema_version"] == 1
    assert not (folder / "report.html").exists()
    assert not (folder / "summary.md").exists()


def test_report_exits_0_when_even(tmp_path):
    folder = write_run(tmp_path / "r", uneven=False, n_speakers=6, seed=3, examples=False)
    result = CliRunner().invoke(command, [str(folder), "--no-html"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_incomplete_folder_exits_2_with_a_clear_message(tmp_path):
    folder = write_run(tmp_path / "r", examples=False)
    (folder / "items.csv").unlink()
    result = CliRunner().invoke(command, [str(folder)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "items.csv: missing" in result.output
    assert "--resume" in result.output
    assert "Traceback" not in result.output


def test_newer_schema_exits_2(tmp_path):
    folder = write_run(tmp_path / "r", meta=run_meta(schema_version=9), examples=False)
    result = CliRunner().invoke(command, [str(folder)], catch_exceptions=False)
    assert result.exit_code == 2
    assert "run.json: schema_version 9 is newer" in result.output


def test_not_a_folder_exits_2(tmp_path):
    result = CliRunner().invoke(command, [str(tmp_path / "nope")], catch_exceptions=False)
    assert result.exit_code == 2
    assert "not a folder" in result.output


def test_help_has_an_example():
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "lastmile report" in result.output
