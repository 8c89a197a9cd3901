"""arbbot: the pure domain core (no Django, no Celery).

Owns the records that flow through the pipeline, exact on-chain math, pool models,
path finding, chain I/O (``arbbot.chain`` only), execution, scoring and the devnet.
"""
