"""axe-core (WCAG 2.1 A and AA rules) on every page a browser test visits, at 1280 and at 390 px.

Where it hooks: every call of Playwright's sync API (a click, a fill, an `expect`, a `goto`) goes
through `SyncBase._sync` (Playwright is pinned). Before such a call, once the page's current
document has loaded, a URL this test has not checked yet is checked at the test's own viewport,
then at whichever of 1280 and 390 px that is not; the viewport goes back after. Checking before the
next call sees every document the test lands on (the last one at teardown) without racing the
page's `load` event. Serious and critical violations are collected and fail the test at teardown,
with the rule, its impact, the elements and the page's URL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

WIDTHS = (1280, 390)  # a laptop and a phone
HEIGHTS = {1280: 900, 390: 844}
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
FAILING_IMPACTS = ("serious", "critical")
AXE_TIMEOUT_MS = 15_000


@dataclass
class Finding:
    url: str
    width: int
    rule: str
    impact: str
    help: str
    targets: list[str]

    def line(self) -> str:
        shown = ", ".join(self.targets[:6]) + (f" (+{len(self.targets) - 6} more)" if len(self.targets) > 6 else "")
        return f"- {self.rule} ({self.impact}) at {self.width} px on {self.url}: {self.help}\n    {shown}"


@dataclass
class AxeChecker:
    """Checks the pages of one browser context; collects what fails."""

    context: object
    findings: list[Finding] = field(default_factory=list)
    checked: set[tuple[str, int]] = field(default_factory=set)
    busy: bool = False

    def check_pages(self) -> None:
        if self.busy:
            return
        self.busy = True
        try:
            for page in list(self.context.pages):
                if not page.is_closed():
                    self._check_page(page)
        finally:
            self.busy = False

    def _check_page(self, page) -> None:
        url = page.url.split("#", 1)[0]
        if not url.startswith(("http://", "https://")):
            return
        viewport = page.viewport_size or {"width": WIDTHS[0], "height": 900}
        widths = [viewport["width"], *(width for width in WIDTHS if width != viewport["width"])]
        if all((url, width) in self.checked for width in widths):
            return
        page.wait_for_load_state("load", timeout=AXE_TIMEOUT_MS)
        url = page.url.split("#", 1)[0]  # the document that loaded (a redirect may have moved on)
        self._run(page, url, viewport["width"])
        for width in widths[1:]:
            if (url, width) in self.checked:
                continue
            page.set_viewport_size({"width": width, "height": HEIGHTS[width]})
            try:
                self._run(page, url, width)
            finally:
                page.set_viewport_size(viewport)  # the test goes on at its own width

    def _run(self, page, url: str, width: int) -> None:
        if (url, width) in self.checked:
            return
        from playwright.sync_api import Error

        options = {"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]}
        for attempt in (1, 2):
            try:
                results = _axe().run(page, options=options)
                break
            except Error as exc:
                if "context was destroyed" in str(exc):
                    return  # the page navigated on its own meanwhile; its next document gets checked
                if attempt == 2:
                    raise
                # A live page (a run's progress) may swap a node axe was reading: look again.
        self.checked.add((url, width))
        for violation in results.response["violations"]:
            if violation.get("impact") in FAILING_IMPACTS:
                targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]]
                self.findings.append(Finding(url, width, violation["id"], violation["impact"],
                                             violation["help"], targets))

    def report(self) -> str:
        pages = sorted({url for url, _ in self.checked})
        return (f"axe-core found {len(self.findings)} serious or critical WCAG 2.1 AA violations "
                f"on {len(pages)} page(s):\n" + "\n".join(finding.line() for finding in self.findings))


_axe_instance = None
_active: list[AxeChecker] = []


def _axe():
    global _axe_instance
    if _axe_instance is None:
        from axe_playwright_python.sync_playwright import Axe

        _axe_instance = Axe()
    return _axe_instance


def _install_hook() -> None:
    """Run the active checkers before every sync Playwright call (once, for the session)."""
    from playwright._impl._sync_base import SyncBase

    if getattr(SyncBase._sync, "_axe_hook", False):
        return
    original = SyncBase._sync

    def _sync(self, awaitable):
        __tracebackhide__ = True
        for checker in list(_active):
            if not checker.busy:
                try:
                    checker.check_pages()
                except BaseException:
                    if asyncio.iscoroutine(awaitable):
                        awaitable.close()  # never sent: no "coroutine was never awaited" warning
                    raise
        return original(self, awaitable)

    _sync._axe_hook = True
    SyncBase._sync = _sync


def start_checking(context) -> AxeChecker:
    """Check every page of context from now on; call finish_checking(checker) before closing it."""
    _install_hook()
    checker = AxeChecker(context)
    _active.append(checker)
    return checker


def finish_checking(checker: AxeChecker) -> None:
    """Check the page the test ended on, stop checking, and fail the test on any finding."""
    try:
        checker.check_pages()
    finally:
        _active.remove(checker)
    if checker.findings:
        pytest.fail(checker.report(), pytrace=False)
