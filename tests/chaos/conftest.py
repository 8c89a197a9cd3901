"""Fixtures for the chaos suite: anvil and the devchain of the chain tests, the live
runner's node (a stand-in executor on anvil) of the execution tests."""

from tests.chain.conftest import anvil, dev, make_anvil  # noqa: F401
from tests.execution.test_runner import node  # noqa: F401
