"""Fixtures for the report tests: a synthetic run folder with its reports, built once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lastmile.report import build_summary, write_reports

from ._factory import write_run


@pytest.fixture(scope="module")
def built_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """An uneven run folder (caribbean degrades far more) with every report written."""
    folder = write_run(tmp_path_factory.mktemp("runs") / "uneven", n_speakers=8)
    summary = build_summary(folder)
    write_reports(folder, summary=summary)
    return folder, summary
