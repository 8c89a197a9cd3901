"""The embedded default chain: anvil + the genuine Uniswap contracts + a market simulator.

``record`` (the ``Deployment`` in ``deployment.json``, the signer key), ``lifecycle``
(``up`` / ``down`` / ``status`` of the node), ``deploy`` (the contracts and their order),
``v3`` (the Uniswap V3 part), ``simulator`` (random order flow), ``scenarios`` (helpers for
tests and demos), ``anvil`` and ``artifacts`` (the node binary and the npm artifacts),
``twochain`` (two such chains joined by the DevBridge, for cross-chain arbitrage).
``python -m arbbot.devnet`` and ``manage.py devnet`` are the command lines over them.
"""
