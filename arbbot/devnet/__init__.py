"""The embedded default chain: anvil + the genuine Uniswap contracts + a market simulator.

Public entry points (``manage.py devnet`` wraps them): ``up``, ``down``, ``status``,
``simulate``, ``load_deployment`` and the ``Deployment`` record.
"""

from arbbot.devnet.lifecycle import down, status, up
from arbbot.devnet.record import Deployment, load_deployment
from arbbot.devnet.simulator import simulate

__all__ = ["Deployment", "down", "load_deployment", "simulate", "status", "up"]
