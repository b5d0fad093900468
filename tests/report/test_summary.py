import csv
import json

import jsonschema
import pytest

from lastmile.errors import ConfigError
from lastmile.report import build_summary, load_run, summary_schema, write_reports

from ._factory import run_meta, write_run


def test_summary_validates_against_the_shipped_schema(built_run):
    _, summary = built_run
    schema = summary_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.Draft202012Validator(schema).validate(summary)
    assert summary["schema_version"] == 1
    assert set(summary) == {
        "schema_version",
        "generated_by",
        "run",
        "analysis",
        "findings",
        "latency",  # the factory's items carry decode_s
    }
    latency = summary["latency"]
    assert 0 <= latency["p50_s"] <= latency["p95_s"] <= latency["max_s"]


def test_latency_summary_of_known_values():
    from lastmile.report.summary import latency_summary

    values = [float(v) for v in range(1, 101)]  # 1 … 100 s
    assert latency_summary(values) == {
        "n_items": 100,
        "p50_s": 50.5,
        "p95_s": 95.05,
        "max_s": 100.0,
        "mean_s": 50.5,
    }


def test_summary_json_on_disk_matches_and_is_strict_json(built_run):
    folder, summary = built_run
    on_disk = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    assert on_disk == summary


def test_rebuilding_is_deterministic(built_run):
    folder, summary = built_run
    assert build_summary(folder) == summary


def test_findings_name_the_flagged_condition_and_groups(built_run):
    _, summary = built_run
    analysis = summary["analysis"]
    flags = {c["id"]: c["flag"] for c in analysis["conditions"]}
    assert flags["clean"] is None
    assert flags["hum60_snr0"] == "uneven"
    worst = next(c for c in analysis["conditions"] if c["id"] == "hum60_snr0")["worst_group"]
    assert worst == "caribbean"
    text = " ".join(summary["findings"])
    assert "Under hum 60 Hz at 0 dB SNR, caribbean speakers lose" in text
    assert "95% CI" in text
    assert "Overall WER goes from" in text


def test_even_run_says_so(tmp_path):
    folder = write_run(tmp_path / "even", uneven=False, n_speakers=6, seed=3)
    summary = build_summary(folder)
    flags = [c["flag"] for c in summary["analysis"]["conditions"] if not c["is_clean"]]
    assert "uneven" not in flags
    assert summary["analysis"]["totals"]["n_uneven"] == 0


def test_failed_items_and_incomplete_run_are_reported(tmp_path):
    folder = write_run(tmp_path / "r", meta=run_meta(complete=False), examples=False)
    lines = (folder / "items.csv").read_text().splitlines()
    head, first = lines[0], lines[1].split(",")
    first[-1] = "decoder crashed"
    (folder / "items.csv").write_text("\n".join([head, ",".join(first), *lines[2:]]) + "\n")
    summary = build_summary(folder)
    assert summary["analysis"]["totals"]["n_failed"] == 1
    text = " ".join(summary["findings"])
    assert "1 of 108 items failed" in text
    assert "incomplete" in text


def test_missing_items_csv_names_the_file_and_the_fix(tmp_path):
    folder = write_run(tmp_path / "r", examples=False)
    (folder / "items.csv").unlink()
    with pytest.raises(ConfigError, match=r"items\.csv: missing.*--resume"):
        build_summary(folder)


def test_missing_run_json(tmp_path):
    folder = write_run(tmp_path / "r", examples=False)
    (folder / "run.json").unlink()
    with pytest.raises(ConfigError, match=r"run\.json: missing"):
        load_run(folder)


def test_newer_schema_version_asks_for_an_upgrade(tmp_path):
    folder = write_run(tmp_path / "r", meta=run_meta(schema_version=2), examples=False)
    with pytest.raises(ConfigError, match=r"schema_version 2 is newer.*upgrade lastmile"):
        build_summary(folder)


def test_bad_count_names_line_and_column(tmp_path):
    folder = write_run(tmp_path / "r", examples=False)
    text = (folder / "items.csv").read_text().splitlines()
    cells = text[3].split(",")
    cells[5] = "many"  # n_ref
    text[3] = ",".join(cells)
    (folder / "items.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(ConfigError, match=r"items\.csv:4: n_ref: expected a whole number"):
        build_summary(folder)


def test_bad_fairness_block(tmp_path):
    meta = run_meta(fairness={"alpha": 2})
    folder = write_run(tmp_path / "r", meta=meta, examples=False)
    with pytest.raises(ConfigError, match=r"fairness\.alpha"):
        build_summary(folder)


def test_write_reports_flags(tmp_path):
    folder = write_run(tmp_path / "r", examples=False)
    written = write_reports(folder, html=False, md=False)
    assert [p.name for p in written] == ["summary.json"]
    assert not (folder / "report.html").exists()


def _keep_rows(folder, keep) -> None:
    import csv

    with (folder / "items.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with (folder / "items.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if keep(r))


def test_clean_only_run_reports_without_plots(tmp_path):
    folder = write_run(tmp_path / "r", examples=False)
    _keep_rows(folder, lambda r: r["condition_id"] == "clean")
    summary = build_summary(folder)
    assert summary["findings"] == ["Overall WER on clean speech is 6.0%."]
    paths = write_reports(folder, summary=summary)
    page = paths[-1].read_text(encoding="utf-8")
    assert "only the clean condition was run" in page
    assert "data:image/png" not in page


def test_single_group_gets_no_verdict(tmp_path):
    folder = write_run(tmp_path / "r", examples=False)
    _keep_rows(folder, lambda r: r["group"] == "us")
    summary = build_summary(folder)
    flags = {c["flag"] for c in summary["analysis"]["conditions"] if not c["is_clean"]}
    assert flags == {"insufficient-data"}
    assert "fewer than two groups" in " ".join(summary["findings"])


def test_a_clean_condition_worse_than_every_other_is_not_called_the_easiest(tmp_path):
    folder = write_run(tmp_path / "loops", uneven=False, n_speakers=4, seed=5, examples=False)
    with (folder / "items.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:  # the recognizer loops on every clean recording
        if row["condition_id"] == "clean":
            row["insertions"] = "40"
    with (folder / "items.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = " ".join(build_summary(folder)["findings"])
    assert "on clean speech and lower in every other condition (at most" in text
    assert "the hardest of" not in text
