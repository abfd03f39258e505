"""Skips for missing infrastructure, and the CI switch that turns them into failures.

With ECC_REQUIRE_ALL=1 (set by .ci/run) nothing may skip: a missing Chromium, PostgreSQL or
Redis fails the test that needed it, and any other skip fails too.
"""

from __future__ import annotations

import os

import pytest

STRICT = os.environ.get("ECC_REQUIRE_ALL") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip (or, under ECC_REQUIRE_ALL=1, fail) the current test unless condition holds."""
    if condition:
        return
    if STRICT:
        pytest.fail(f"required in CI but missing: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if STRICT and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under ECC_REQUIRE_ALL=1: {report.longrepr}"
