"""The project's own Solidity (``ArbExecutor.sol``), its build (``build.py``) and the committed artifact."""
