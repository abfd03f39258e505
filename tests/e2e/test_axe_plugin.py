"""The axe check the browser suite runs on every page: it reports what fails, at both widths, and
leaves the test's own viewport as it was."""

from __future__ import annotations

import pytest

from tests.plugins.axe import finish_checking, start_checking

pytestmark = pytest.mark.e2e

LOW_CONTRAST = """<!doctype html><html lang="en"><head><title>Low contrast</title>
<style>@media (max-width: 500px) { .narrow { color: #bbb; } }</style></head>
<body><main><h1>Fine</h1><p style="color:#ccc" id="faint">Barely there</p><p class="narrow">Only on a phone</p>
</main></body></html>"""
ACCESSIBLE = """<!doctype html><html lang="en"><head><title>Fine</title></head>
<body><main><h1>Readable</h1><p>Black on white.</p></main></body></html>"""


@pytest.fixture
def context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pages = {"/low": LOW_CONTRAST, "/fine": ACCESSIBLE}
    context.route("http://axe.test/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body=pages[route.request.url.removeprefix("http://axe.test")]))
    yield context
    context.close()


def test_a_page_with_serious_violations_fails_with_a_readable_report(context):
    page = context.new_page()
    checker = start_checking(context)
    page.goto("http://axe.test/low")
    page.title()  # the next call after the page loaded: the check runs before it

    with pytest.raises(pytest.fail.Exception) as failure:
        finish_checking(checker)

    report = str(failure.value)
    assert "color-contrast (serious) at 1280 px on http://axe.test/low" in report
    assert "color-contrast (serious) at 390 px on http://axe.test/low" in report
    assert "#faint" in report and ".narrow" in report.split("at 390 px")[1]
    assert page.viewport_size == {"width": 1280, "height": 900}  # the test's own width again


def test_each_page_is_checked_once_per_width_and_a_clean_page_passes(context):
    page = context.new_page()
    checker = start_checking(context)
    for _ in range(2):
        page.goto("http://axe.test/fine")
    finish_checking(checker)  # raises nothing
    assert checker.checked == {("http://axe.test/fine", 1280), ("http://axe.test/fine", 390)}
