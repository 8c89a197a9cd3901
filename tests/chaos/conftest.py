"""Fixtures for the chaos suite: anvil and the devchain of the chain tests, the live
runner's node (a stand-in executor on anvil) of the execution tests."""

from tests.chain.conftest import anvil, dev, make_anvil  # noqa: F401
from tests.execution.test_runner import node  # noqa: F401

from typing import Any  # noqa: E402

import pytest  # noqa: E402

#: One row per fault case of the fleet (``test_fleet_faults``), printed at the end.
SUMMARY: list[dict[str, Any]] = []


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not SUMMARY:
        return
    cols = list(SUMMARY[0])
    widths = [max(len(c), *(len(str(r[c])) for r in SUMMARY)) for c in cols]
    tr = terminalreporter
    tr.section("chaos summary")
    tr.write_line("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for r in SUMMARY:
        tr.write_line("  ".join(str(r[c]).ljust(w) for c, w in zip(cols, widths)))
    import json

    tr.write_line(json.dumps({"chaos": SUMMARY}))
