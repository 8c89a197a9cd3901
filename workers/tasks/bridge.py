"""bridge queue: the cross-chain strategy's pass over each configured pair (``tick``:
inventory, a trade, rebalances) and the sagas' steps (``advance``), over
``arbbot.crosschain`` and the rows ``config apply`` wrote (``selectors.xchain_pairs``).

Idempotent and safe to redeliver: a saga step re-reads the recorded state under the row's
lock and never sends a leg twice (``arbbot.crosschain.saga``), so ``advance`` is
``acks_late``: a worker killed mid-step leaves the message to the next one, which resumes
from the recorded state. A saga not final re-enqueues its own next step; ``resume`` sends
a step for every open saga (after a lost message)."""

from __future__ import annotations

import logging
import time
from typing import Any

from prometheus_client import Counter

from arbbot.config import get_settings
from arbbot.errors import ArbbotError
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
    from webapp.core import selectors
    from webapp.core.services import DbSagaStore

    store = DbSagaStore()
    recorded = store.get(int(saga_id))
    if recorded.final:
        return recorded.state
    name = recorded.plan.get("pair")
    pairs = selectors.xchain_pairs(name)
    key = get_settings().xchain_key
    missing = "no-key" if not key else "no-pair" if len(pairs) != 1 else ""
    if missing:
        # nothing is sent: the saga waits in its recorded state (``resume`` steps it again)
        log.error("cross-chain saga %s not stepped: %s", saga_id,
                  "no ARBBOT_XCHAIN_KEY" if not key else f"its pair {name!r} is not configured")
        return missing
    pair = pairs[0]
    if runtime.hotstate(pair.a.chain_id).fleet.kill_switch_engaged():
        # nothing is sent while the switch is on: the saga waits in its recorded state
        advance.apply_async((saga_id,), countdown=KILL_SWITCH_RETRY_S)
        return "held-by-kill-switch"
    result = saga.advance(store, engine.chains_for(pair, key), int(saga_id))
    for alert in result.alerts:
        ALERTS.labels(alert=alert).inc()
    if result.final:
        SAGAS.labels(kind=recorded.kind, state=result.state).inc()
    elif requeue:
        advance.apply_async((saga_id,), countdown=STEP_DELAY_S)
    return result.state


# no "expires": an expired message is rejected to the dead-letter queue (see celery_app)
@app.task(name="workers.tasks.bridge.tick")
def tick() -> list[int]:
    """One strategy pass per configured pair: record the inventory; if both chains are live
    and the kill switch is off, start a trade saga if one pays and none of the pair's is
    open, and a rebalance saga per token out of its band if none is open and the pair's
    bridge can send; step them."""
    from webapp.core import selectors

    settings = get_settings()
    if not settings.xchain_key:
        log.info("cross-chain tick: no ARBBOT_XCHAIN_KEY: nothing to do")
        return []
    ids: list[int] = []
    for pair in selectors.xchain_pairs():
        try:
            ids += _tick_pair(pair, settings.xchain_key)
        except (ArbbotError, OSError):  # one pair's node down: the others go on
            log.exception("cross-chain tick: pair %s failed", pair.name)
    for saga_id in ids:
        advance.delay(saga_id)
    return ids


def _tick_pair(pair: Any, key: str) -> list[int]:
    from arbbot.crosschain import engine
    from webapp.core import selectors, services

    chains = engine.chains_for(pair, key)
    services.xchain_inventory_record(engine.read_inventory(chains), pair.tokens, chains.wallet)
    modes = {c.chain_id: runtime.chain_mode(c.chain_id)() for c in pair.chains}  # the chain's, else the fleet's
    refusal = engine.send_refusal(modes, runtime.hotstate(pair.a.chain_id).fleet.kill_switch_engaged())
    if refusal:
        log.info("cross-chain tick: pair %s: no new saga: %s", pair.name, refusal)
        return []
    stamp = f"{pair.name}:{int(time.time() * 1000)}"
    new = []
    if not selectors.xchain_open("trade", pair.name):
        trade = engine.plan_trade(pair, chains, f"trade:{stamp}")
        new += [trade] if trade else []
    if not selectors.xchain_open("rebalance", pair.name):
        rebalances = engine.plan_rebalances(pair, chains, f"rebalance:{stamp}")
        blocked = engine.transfer_refusal(pair)
        if rebalances and blocked:
            log.warning("cross-chain tick: %s", blocked)
        elif rebalances:
            new += rebalances
    return services.xchain_sagas_record(new)


@app.task(name="workers.tasks.bridge.resume")
def resume() -> int:
    from webapp.core import selectors

    ids = selectors.xchain_open()
    for saga_id in ids:
        advance.delay(saga_id)
    return len(ids)
