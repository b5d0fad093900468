"""pytest plugin: scenario packs as regression tests against stored baselines."""

from __future__ import annotations

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("lastmile", "lastmile scenario packs")
    group.addoption("--lastmile", action="store_true", help="Collect scenario packs as tests.")
