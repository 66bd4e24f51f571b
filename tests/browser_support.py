"""Headless Chromium for page tests: Debian's package driven by playwright-core (``playwright
install`` cannot download browsers here). ``.ci/run`` installs chromium; tests skip with a
reason where it or playwright is missing."""
from __future__ import annotations

import shutil

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def sync_playwright():  # noqa: ANN201
    """playwright's sync API, or a skip saying what is missing."""
    api = pytest.importorskip("playwright.sync_api")
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    return api.sync_playwright()


def launch(p):  # noqa: ANN001, ANN201
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
