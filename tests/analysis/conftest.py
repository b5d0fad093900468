"""Fixtures for the analysis tests."""

from __future__ import annotations

import pytest

from lastmile.analysis import FairnessSettings


@pytest.fixture
def fast_settings() -> FairnessSettings:
    """Small B and P for quick tests."""
    return FairnessSettings(n_bootstrap=400, n_permutations=499)
