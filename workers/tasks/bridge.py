"""bridge queue: the cross-chain strategy's pass (``tick``: inventory, a trade, rebalances)
and the sagas' steps (``advance``), over ``arbbot.crosschain`` and the saga rows.

Idempotent and safe to redeliver: a saga step re-reads the recorded state under the row's
lock and never sends a leg twice (``arbbot.crosschain.saga``), so ``advance`` is
``acks_late``: a worker killed mid-step leaves the message to the next one, which resumes
from the recorded state. A saga not final re-enqueues its own next step; ``resume`` sends
a step for every open saga (after a lost message)."""

from __future__ import annotations

import time

import logging

from prometheus_client import Counter

from arbbot.config import get_settings
from workers import runtime
from workers.celery_app import app

log = logging.getLogger("arbbot.crosschain")

#: An operator must look: a leg unwound or held, a transfer refunded or stalled.
ALERTS = Counter("arbbot_xchain_alerts_total", "Cross-chain sagas that needed compensation, by alert", ["alert"])
SAGAS = Counter("arbbot_xchain_sagas_total", "Cross-chain sagas finished, by kind and state", ["kind", "state"])
STEP_DELAY_S = 0.5
KILL_SWITCH_RETRY_S = 5.0


@app.task(name="workers.tasks.bridge.advance", acks_late=True, reject_on_worker_lost=True)
def advance(saga_id: int, requeue: bool = True) -> str:
    from arbbot.crosschain import engine, saga
    from webapp.core.services import DbSagaStore

    two, chains, _config = engine.load()
    if runtime.hotstate(two.a.chain_id).fleet.kill_switch_engaged():
        # nothing is sent while the switch is on: the saga waits in its recorded state
        advance.apply_async((saga_id,), countdown=KILL_SWITCH_RETRY_S)
        return "held-by-kill-switch"
    result = saga.advance(DbSagaStore(), chains, int(saga_id))
    for alert in result.alerts:
        ALERTS.labels(alert=alert).inc()
    if result.final:
        SAGAS.labels(kind=DbSagaStore().get(int(saga_id)).kind, state=result.state).inc()
    elif requeue:
        advance.apply_async((saga_id,), countdown=STEP_DELAY_S)
    return result.state


# no "expires": an expired message is rejected to the dead-letter queue (see celery_app)
@app.task(name="workers.tasks.bridge.tick")
def tick() -> list[int]:
    """One strategy pass: record the inventory, start a trade saga if one pays and none is
    open, a rebalance saga per token out of its band if none is open; step them."""
    from arbbot.crosschain import engine
    from webapp.core import selectors, services

    two, chains, config = engine.load()
    services.xchain_inventory_record(engine.read_inventory(chains), two.tokens, chains.wallet)
    refusal = engine.send_refusal(get_settings().mode, runtime.hotstate(two.a.chain_id).fleet.kill_switch_engaged())
    if refusal:
        log.info("cross-chain tick: no new saga: %s", refusal)
        return []
    stamp = f"{int(time.time() * 1000)}"
    new = []
    if not selectors.xchain_open("trade"):
        trade = engine.plan_trade(two, chains, config, f"trade:{stamp}")
        new += [trade] if trade else []
    if not selectors.xchain_open("rebalance"):
        new += engine.plan_rebalances(two, chains, config, f"rebalance:{stamp}")
    ids = services.xchain_sagas_record(new)
    for saga_id in ids:
        advance.delay(saga_id)
    return ids


@app.task(name="workers.tasks.bridge.resume")
def resume() -> int:
    from webapp.core import selectors

    ids = selectors.xchain_open()
    for saga_id in ids:
        advance.delay(saga_id)
    return len(ids)
