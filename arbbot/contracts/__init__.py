"""The project's own Solidity (``ArbExecutor.sol``, ``TransferProbe.sol``), its build
(``build.py``), the committed artifacts and the executor's measured gas (``gas.py``)."""
