from __future__ import annotations

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def catalogue_path() -> Path:
    return ROOT / "indicators.yaml"


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """A writable copy of the catalogue and sample data."""
    shutil.copy(ROOT / "indicators.yaml", tmp_path / "indicators.yaml")
    shutil.copytree(ROOT / "sample_data", tmp_path / "sample_data")
    return tmp_path
