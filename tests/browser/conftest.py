"""Headless Chromium for the end-to-end tests (dash[testing]'s ``dash_duo``).

Debian's ``chromium`` and ``chromedriver`` are used (a test tool's own browser download
fails offline). ``pytest_setup_options`` is dash.testing's hook for the webdriver options:
dash adds ``--no-sandbox --disable-gpu --disable-dev-shm-usage`` itself; we add a new-style
headless mode (no ``--headless`` pytest flag needed), a 1366 x 768 window (the smallest
screen the page must work on), a quiet profile in a fresh user-data dir, and software
WebGL (SwiftShader) so the WebGL scatter plots render without a GPU.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"

CHROMIUM = os.environ.get("DASH_TEST_CHROMEPATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver")
WINDOW = (1366, 768)


def _browser_available() -> bool:
    return Path(CHROMIUM).is_file() and CHROMEDRIVER is not None


def pytest_setup_options():
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    # a fresh profile per browser, inside a folder the session removes at its end
    base = os.environ.get("TRANSFERVIZ_CHROME_PROFILES")
    profile = tempfile.mkdtemp(prefix="profile-", dir=base if base and Path(base).is_dir() else None)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-default-apps", "--no-first-run", "--mute-audio",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 f"--window-size={WINDOW[0]},{WINDOW[1]}", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    return options


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    skip = None if _browser_available() else pytest.mark.skip(
        reason="needs Debian's chromium and chromedriver (make browser)")
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            if skip is not None:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _chromium_env():
    # dash.testing reads the binary from this variable as well
    os.environ.setdefault("DASH_TEST_CHROMEPATH", CHROMIUM)
    base = tempfile.mkdtemp(prefix="transferviz-chromium-")
    os.environ["TRANSFERVIZ_CHROME_PROFILES"] = base
    yield
    os.environ.pop("TRANSFERVIZ_CHROME_PROFILES", None)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots land in ``test-artifacts/`` (git-ignored) for people and CI to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
