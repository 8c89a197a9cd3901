"""SIGKILL of the bridge worker at each saga step: a real Celery worker (prefork) on the
real broker and database kills itself, main process and all, right after a step is
committed (``ARBBOT_XCHAIN_CRASH_AT``); RabbitMQ redelivers the unacknowledged step to a
fresh worker, which resumes from the recorded state. Every saga ends final and no leg runs
twice: the wallet's transaction count on each chain grows by exactly the legs recorded
there, and the inventory moves by exactly one execution of each.

One crash point runs in ``make test``; every point runs with ``ARBBOT_XCHAIN_LONG=1``
(``make test-xchain``), about a minute and a half."""

from __future__ import annotations

import os
import threading
from pathlib import Path


import pytest

from arbbot.crosschain import engine
from arbbot.crosschain.saga import Rebalance, rebalance_saga
from arbbot.devnet.scenarios import approve, fund_token, plant_price_gap, swap_v2
from arbbot.devnet.twochain import CHAIN_A, CHAIN_B
from tests.chaos.procs import worker
from tests.crosschain.conftest import TwoChains, configure
from tests.e2e.fleet import wait_for

LONG = bool(os.environ.get("ARBBOT_XCHAIN_LONG"))
QUICK = {("trade", "between-broadcasts")}
POINTS = [
    ("trade", "signed"), ("trade", "between-broadcasts"), ("trade", "sent"),
    ("unwind", "compensating"), ("unwind", "compensating-wait"),
    ("rebalance", "signed"), ("rebalance", "sent"), ("rebalance", "in_flight"),
]
PARAMS = [pytest.param(kind, point, marks=[] if LONG or (kind, point) in QUICK else pytest.mark.skip(
    reason="every crash point runs with `make test-xchain`")) for kind, point in POINTS]


def _nonces(c: TwoChains, wallet: str) -> dict[int, int]:
    return {cid: int(rpc.call("eth_getTransactionCount", [wallet, "latest"]), 16) for cid, rpc in c.rpcs.items()}


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("kind", "point"), PARAMS)
def test_sigkill_at_each_step_resumes_and_runs_no_leg_twice(
    chains2: TwoChains, tmp_path: Path, kind: str, point: str
) -> None:
    from django.db import connection

    from webapp.core import services
    from workers.celery_app import app

    c = chains2
    pair, chains = configure(c, delay_blocks=0, stall_blocks=1_000)  # committed: the worker reads it
    wallet = chains.wallet
    if kind == "rebalance":
        saga = rebalance_saga(Rebalance("USDC", CHAIN_B, CHAIN_A, 5_000 * 10**18), chains, f"crash:{point}")
    else:
        plant_price_gap(c.b.rpc(), c.two.b, "USDC", "LINK", 5.0, dex="uniswap")
        planned = engine.plan_trade(pair, chains, f"crash:{kind}:{point}")
        assert planned is not None
        saga = planned
        if kind == "unwind":  # a rival closes the gap on B first: the sell leg reverts
            rpc_b, dep_b = c.b.rpc(), c.two.b
            amount = 3_000 * 10**18
            fund_token(rpc_b, dep_b, "LINK", dep_b.deployer, amount)
            approve(rpc_b, dep_b.deployer, dep_b.token("LINK"), dep_b.dex("uniswap")["router"], amount)
            swap_v2(rpc_b, dep_b, dep_b.deployer, dep_b.pool("uniswap", "USDC", "LINK"), dep_b.token("LINK"), amount)
    before_inventory, before_nonces = engine.read_inventory(chains), _nonces(c, wallet)
    saga_id = services.xchain_sagas_record([saga])[0]

    env = dict(os.environ, ARBBOT_DATABASE_NAME=connection.settings_dict["NAME"], ARBBOT_DEVNET_DIR=str(c.directory),
               ARBBOT_DEVNET="1")
    stop = threading.Event()
    relayer = c.relayer(delay_blocks=0)
    relay = threading.Thread(target=relayer.run, args=(stop, 0.2), daemon=True)
    relay.start()
    try:
        crash_env = {**env, "ARBBOT_XCHAIN_CRASH_AT": point, "ARBBOT_XCHAIN_CRASH_PARENT": "1"}
        with worker("bridge", crash_env, tmp_path, name="bridge-crash") as proc:
            app.send_task("workers.tasks.bridge.advance", (saga_id,))
            wait_for(lambda: proc.poll() is not None, 120, f"the bridge worker to die at {point}")
        assert proc.returncode != 0
        crashed_in = services.DbSagaStore().get(saga_id).state
        assert crashed_in == point.removesuffix("-wait") if point != "between-broadcasts" else crashed_in == "sent"
        with worker("bridge", env, tmp_path, name="bridge-resume"):
            final = wait_for(lambda: (s := services.DbSagaStore().get(saga_id)).final and s, 120, "the saga to end")
    finally:
        stop.set()
        relay.join(timeout=10)

    expected = {"trade": "done", "unwind": "compensated", "rebalance": "done"}[kind]
    assert final.state == expected, final.error
    legs_per_chain = {cid: sum(1 for leg in final.legs if leg.chain_id == cid) for cid in c.rpcs}
    after = _nonces(c, wallet)
    assert {cid: after[cid] - before_nonces[cid] for cid in c.rpcs} == legs_per_chain  # each leg sent once
    inventory = engine.read_inventory(chains)
    if kind == "trade":
        buy, sell = final.legs
        assert [leg.realised_out for leg in final.legs] == [leg.predicted_out for leg in final.legs]
        assert inventory["USDC"][CHAIN_A] == before_inventory["USDC"][CHAIN_A] - buy.amount_in
        assert inventory["USDC"][CHAIN_B] == before_inventory["USDC"][CHAIN_B] + sell.predicted_out
    elif kind == "unwind":
        buy, _sell, unwind = final.legs
        assert inventory["LINK"][CHAIN_A] == before_inventory["LINK"][CHAIN_A]  # bought once, sold back once
        assert inventory["USDC"][CHAIN_A] == before_inventory["USDC"][CHAIN_A] - buy.amount_in + unwind.realised_out
    else:
        assert inventory["USDC"][CHAIN_B] == before_inventory["USDC"][CHAIN_B] - 5_000 * 10**18
        assert inventory["USDC"][CHAIN_A] == before_inventory["USDC"][CHAIN_A] + final.legs[0].predicted_out


