"""The security suites: hostile models on the real Docker engine, and abuse of the service.

Tests marked ``hostile`` are each one attempt by a hostile model to get out of
its sandbox or at bibia's users; one that passes is an attempt contained. The
run ends with the figure: attempts, contained.
"""

from __future__ import annotations

import pytest

# The real-engine fixtures of the demonstrator suites (image, short socket paths, fixture models).
from tests.demos_service.conftest import demo_image, fixture_models, short_tmp  # noqa: F401

_OUTCOMES: dict[str, str] = {}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hostile: one hostile-model attempt (the suite prints attempts and contained)"
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "hostile" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _OUTCOMES[report.nodeid] = report.outcome


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    if not _OUTCOMES:
        return
    contained = sum(1 for outcome in _OUTCOMES.values() if outcome == "passed")
    terminalreporter.section("hostile models")
    terminalreporter.write_line(f"hostile models: {len(_OUTCOMES)} attempts, {contained} contained")
    for nodeid, outcome in sorted(_OUTCOMES.items()):
        if outcome != "passed":
            terminalreporter.write_line(f"  NOT CONTAINED ({outcome}): {nodeid}")
