"""A real Chromium (Debian's package) driven by Playwright; never `playwright install`."""

from __future__ import annotations

import shutil

import pytest

from tests.plugins.axe import finish_checking, start_checking
from tests.plugins.strict import require

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    require(executable is not None, "Chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS, headless=True)
    yield browser
    browser.close()
    playwright.stop()


@pytest.fixture
def page(browser):
    """A page at 1280 px whose every visited page is checked with axe-core (tests/plugins/axe.py)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    checker = start_checking(context)
    try:
        yield page
        finish_checking(checker)
    finally:
        context.close()
