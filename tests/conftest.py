from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# no results store shared between tests or runs (the dashboard's default is on); tests/test_results_cache.py
# switches it on where it is tested
os.environ["AUDIT_METRICS_RESULTS_CACHE"] = "off"


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


# Browser tests (tests/browser_support.py): one chromium and, unless a module defines its own ``server`` (a
# releases store, an editable catalogue...), one dashboard on the bundled sample per module
@pytest.fixture(scope="module")
def browser():
    from browser_support import chromium

    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from browser_support import app_server, require_chromium

    require_chromium()
    with app_server(tmp_path_factory.mktemp("server"), {"AUDIT_METRICS_RESULTS_CACHE": "off"}) as url:
        yield url
