"""The user's path end to end, on a chain that ``arbbot.devnet`` did not build (issue 15).

The chain (``tests.e2e.userchain``): anvil with chain id 777 and a block every 0.5 s,
built by test code with the genuine Uniswap V2 and V3 factories, a wrapped native token
configured as ``WNATIVE``, two tokens, and a fork (``sushiswap``) created 50 blocks after
the rest. arbbot learns about it only through the commands an operator runs, as
subprocesses: ``config apply`` (with the on-chain checks), ``executor deploy`` with the
bot's own key (a key the node does not hold: raw signed transactions), ``executor fund``,
``backfill``, ``mode live --yes-live``; then the fleet (one real Celery worker per queue
and beat) with ``ARBBOT_MODE`` unset: the chain is live because the command said so. Blocks
reach the fleet through the block follower (``arbbot follow`` over the node's WebSocket), as
the operator runs it: beat's fallback tick is set to an hour, so nothing else scans.

Two gaps are planted in one block: WNATIVE/ALPHA on the fork (the best cycle starts at
WNATIVE) and ALPHA/BETA on the fork (no cycle through it reaches WNATIVE: the best starts
at ALPHA). Both must be executed, each realised profit equal to the prediction and to the
executor's balance change to the wei, and the block's opportunities ranked by their value
in the native token, not by raw amounts (the ALPHA cycle's raw profit is the larger one).

This module runs its own fleet on the run's database, vhost and Redis prefix; the shared
devnet fleet (``conftest.fleet``) must not run at the same time (its beat would scan this
chain too), so ``conftest`` orders this module's tests before the other e2e tests.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from typing import Any, Iterator

import pytest
from eth_account import Account
from eth_utils import keccak

from arbbot.chain.rpc import RpcClient
from arbbot.chain.tx import encode_call, send_unlocked
from arbbot.devnet.anvil import start_anvil
from tests.e2e import userchain
from tests.e2e.fleet import ROOT, start_workers, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

CHAIN_ID = 777
BLOCK_TIME_S = 0.5

TRANSFER = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
DEPOSIT = "0x" + keccak(text="Deposit(address,uint256)").hex()
WITHDRAWAL = "0x" + keccak(text="Withdrawal(address,uint256)").hex()


def arbbot(env: dict[str, str], *args: str) -> str:
    """One operator command; its stdout (it must succeed, and never print the key)."""
    r = subprocess.run([sys.executable, "manage.py", "arbbot", *args], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"arbbot {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    assert env["ARBBOT_SIGNER_KEY"][2:].lower() not in (r.stdout + r.stderr).lower()
    return r.stdout


def _line(stdout: str, pattern: str) -> re.Match[str]:
    m = re.search(pattern, stdout)
    assert m, f"no line matching {pattern!r} in:\n{stdout}"
    return m


@pytest.fixture(scope="module")
def user_fleet(tmp_path_factory: pytest.TempPathFactory, django_db_setup: Any,
               django_db_blocker: Any) -> Iterator[dict[str, Any]]:
    from django.db import connection

    from webapp.core import selectors, services
    from webapp.core.models import Chain
    from workers import runtime

    work = tmp_path_factory.mktemp("user-chain")
    logs = tmp_path_factory.mktemp("user-chain-logs")
    anvil = start_anvil(chain_id=CHAIN_ID, log_path=work / "anvil.log")
    miner = None
    try:
        rpc = anvil.rpc()
        chain = userchain.build(rpc)
        # The bot's key: a fresh one, funded with native token and some WNATIVE to fund the
        # executor with; the node cannot sign for it.
        key = "0x" + secrets.token_hex(32)
        signer = Account.from_key(key).address.lower()
        rpc.call("anvil_setBalance", [signer, hex(100 * userchain.E18)])
        send_unlocked(rpc, chain.deployer, to=chain.wnative,
                      data=encode_call("transfer(address,uint256)", [signer, 5 * userchain.E18]))
        miner = userchain.Miner(anvil.url, BLOCK_TIME_S).start()
        runtime.hotstate(CHAIN_ID).clear()
        with django_db_blocker.unblock():
            db_name = connection.settings_dict["NAME"]
        env = {**os.environ, "ARBBOT_DATABASE_NAME": db_name, "ARBBOT_SIGNER_KEY": key,
               "ARBBOT_DEVNET_DIR": str(work / "no-devnet"), "ARBBOT_SCAN_INTERVAL": "3600",
               "PYTHONUNBUFFERED": "1"}
        for name in ("ARBBOT_MODE", "ARBBOT_SIGNER_KEY_FILE", "ARBBOT_SIGNER_KEYSTORE_FILE", "ARBBOT_OWNER_KEY",
                     "ARBBOT_OWNER_KEY_FILE", "ARBBOT_MAX_AMOUNT_IN"):
            env.pop(name, None)

        config = work / "userchain.yaml"
        config.write_text(userchain.config_yaml(chain, anvil.url, CHAIN_ID))
        out = {"apply": arbbot(env, "config", "apply", str(config))}
        out["deploy"] = arbbot(env, "executor", "deploy", "--chain", str(CHAIN_ID), "--yes")
        executor = _line(out["deploy"], r"(?m)^executor: (0x[0-9a-f]{40})$").group(1)
        out["fund"] = arbbot(env, "executor", "fund", "--chain", str(CHAIN_ID), "WNATIVE", "1", "--yes")
        out["backfill"] = arbbot(env, "backfill", "--chain", str(CHAIN_ID))
        target = int(_line(out["backfill"], r"backfilled through block ([\d,]+)").group(1).replace(",", ""))
        with django_db_blocker.unblock():
            cursors = selectors.backfill_cursors(CHAIN_ID)  # before the fleet's scan stage moves on
        out["mode"] = arbbot(env, "mode", "live", "--chain", str(CHAIN_ID), "--yes-live")
        try:
            with start_workers(env, logs, follow=(CHAIN_ID, anvil.url.replace("http://", "ws://", 1))):
                yield {"rpc": rpc, "chain": chain, "miner": miner, "executor": executor, "signer": signer,
                       "target": target, "cursors": cursors, "out": out, "logs": logs}
        finally:
            with django_db_blocker.unblock():
                services.chain_history_forget(CHAIN_ID)
                Chain.objects.filter(chain_id=CHAIN_ID).delete()
            runtime.hotstate(CHAIN_ID).clear()
            if os.environ.get("ARBBOT_E2E_SHOW_LOGS"):
                for f in sorted(logs.glob("*.log")):
                    sys.stderr.write(f"==== {f.name}\n{f.read_text()[-4000:]}\n")
    finally:
        if miner is not None:
            miner.stop()
        anvil.stop()


# --------------------------------------------------------------------------- reading


def _rows(django_db_blocker: Any, model: str, **filters: Any) -> list[Any]:
    from webapp.core import models

    chain = {"chain__chain_id": CHAIN_ID} if model == "Pool" else {"chain_id": CHAIN_ID}  # Pool: a foreign key
    with django_db_blocker.unblock():
        return list(getattr(models, model).objects.filter(**chain, **filters).order_by("id"))


def _recorded(django_db_blocker: Any, execution: Any) -> list[Any]:
    """The opportunity rows of ``execution``'s cycle and block (none until its block's
    records are written, ``RECORD_DELAY_S`` after its decisions)."""
    return _rows(django_db_blocker, "Opportunity", block_number=execution.block_number, path_id=execution.path_id)


def _opportunity(django_db_blocker: Any, execution: Any) -> Any:
    rows = _recorded(django_db_blocker, execution)
    assert rows, f"no opportunity recorded for execution {execution.id}"
    return rows[0]


def _token_delta(token: str, who: str, receipt: dict[str, Any]) -> int:
    """What one transaction did to ``who``'s balance of ``token``, from the token's events
    (ERC20 ``Transfer``; WETH9's ``Deposit``/``Withdrawal`` too)."""
    me = "0x" + "0" * 24 + who.lower()[2:]
    delta = 0
    for entry in receipt["logs"]:
        if entry["address"].lower() != token.lower():
            continue
        topics = [t.lower() for t in entry["topics"]]
        amount = int(entry["data"], 16)
        if topics[0] == TRANSFER:
            delta += amount * ((topics[2] == me) - (topics[1] == me))
        elif topics[0] == DEPOSIT and topics[1] == me:
            delta += amount
        elif topics[0] == WITHDRAWAL and topics[1] == me:
            delta -= amount
    return delta


def _balance(rpc: RpcClient, token: str, who: str, block: int) -> int:
    return int(rpc.eth_call(token, encode_call("balanceOf(address)", [who]), block), 16)


def _check_exact(fleet: dict[str, Any], row: Any) -> int:
    """The execution's receipt, its realised profit, the prediction and the executor's
    balance: all equal to the wei. Returns the profit."""
    rpc, executor = fleet["rpc"], fleet["executor"]
    receipt = rpc.call("eth_getTransactionReceipt", [row.tx_hash])
    assert int(receipt["status"], 16) == 1
    assert row.gas_used == int(receipt["gasUsed"], 16) > 0
    mined = int(receipt["blockNumber"], 16)
    assert row.mined_block == mined
    # Read a block's state once a later block exists (anvil may answer a read at the head
    # with the state of the block being mined on top of it; see test_pipeline).
    wait_for(lambda: rpc.block_number() > mined, 30, f"a block after {mined}")
    gained = _token_delta(row.profit_token, executor, receipt)
    assert gained > 0
    assert gained == int(row.predicted_profit) == int(row.realised_profit)
    if int(row.final_amount_in):
        assert gained == int(row.final_predicted_profit)
    # The balance moved by what the block's transactions did, and nothing else.
    block = rpc.call("eth_getBlockByNumber", [hex(mined), False])
    per_tx = [_token_delta(row.profit_token, executor, rpc.call("eth_getTransactionReceipt", [h]))
              for h in block["transactions"]]
    moved = _balance(rpc, row.profit_token, executor, mined) - _balance(rpc, row.profit_token, executor, mined - 1)
    assert moved == sum(per_tx)
    return gained


# --------------------------------------------------------------------------- tests


def test_backfill_found_the_late_dex_and_stopped_at_its_target(user_fleet: dict[str, Any],
                                                               django_db_blocker: Any) -> None:
    chain = user_fleet["chain"]
    late = chain.dexes["sushiswap"]
    assert late["start_block"] >= userchain.LATE_DEX_DELAY_BLOCKS
    assert user_fleet["out"]["apply"].startswith("applied ")
    # Every DEX's cursor at the target the command printed, the late one included.
    assert user_fleet["cursors"] == {d["factory"]: user_fleet["target"] for d in chain.dexes.values()}
    found = {p.address for p in _rows(django_db_blocker, "Pool", dex__name="sushiswap")}
    assert found == {chain.pools[("sushiswap", "WNATIVE/ALPHA")], chain.pools[("sushiswap", "ALPHA/BETA")]}
    every = {p.address for p in _rows(django_db_blocker, "Pool")}
    assert every == set(chain.pools.values())


def test_both_gaps_are_captured_exactly_and_ranked_in_native(user_fleet: dict[str, Any],
                                                             django_db_blocker: Any) -> None:
    chain, miner = user_fleet["chain"], user_fleet["miner"]
    native_gap = chain.pools[("sushiswap", "WNATIVE/ALPHA")]
    token_gap = chain.pools[("sushiswap", "ALPHA/BETA")]
    from workers import runtime

    # The fleet is following the chain before anything is planted.
    hot = runtime.hotstate(CHAIN_ID)
    wait_for(lambda: hot.head() is not None, 60, "the scan stage to follow chain 777")
    # Both gaps in one block: ALPHA about 8 % cheaper against WNATIVE, BETA about 8 %
    # cheaper against ALPHA, both on the late fork.
    planted = miner.send_in_one_block(
        chain.deployer,
        userchain.gap_txs(chain, "sushiswap", "WNATIVE/ALPHA", chain.alpha, 8.0)
        + userchain.gap_txs(chain, "sushiswap", "ALPHA/BETA", chain.beta, 8.0),
    )

    def captured(pool: str) -> Any:
        for e in _rows(django_db_blocker, "Execution", status="success", block_number__gte=planted):
            recorded = _recorded(django_db_blocker, e)  # a trade confirmed before its records waits for them
            if recorded and pool in recorded[0].pools:
                return e
        return None

    native_row = wait_for(lambda: captured(native_gap), 90, "an execution through the WNATIVE/ALPHA gap")
    token_row = wait_for(lambda: captured(token_gap), 90, "an execution through the ALPHA/BETA gap")
    assert native_row.mode == token_row.mode == "live"
    # Announced by the follower (beat's tick is an hour away): each decision is timed from
    # the block's arrival at the follower.
    assert native_row.decision_latency_ms is not None and token_row.decision_latency_ms is not None

    # The native gap's cycle starts (and is paid) at WNATIVE; the token gap's at ALPHA.
    assert native_row.profit_token == chain.wnative
    assert token_row.profit_token == chain.alpha
    assert _opportunity(django_db_blocker, token_row).tokens[0] == chain.alpha
    native_profit = _check_exact(user_fleet, native_row)
    alpha_profit = _check_exact(user_fleet, token_row)
    # Valued in the native token: WNATIVE's profit is its own value; ALPHA's is worth about
    # 1/100 of its amount (1 WNATIVE = 100 ALPHA at the pools' prices).
    assert int(native_row.profit_native) == native_profit
    assert token_row.profit_native is not None
    assert alpha_profit // 150 < int(token_row.profit_native) < alpha_profit // 50
    assert token_row.realised_profit_native is not None and int(token_row.realised_profit_native) > 0

    # The first block that saw the gaps (the planted one, or a later one when a scan took
    # several blocks at once): its opportunities, in the order the ml stage ranked and
    # recorded them (one batch, one insert): by net profit in native, not by raw amounts.
    # The ALPHA cycle's raw profit is larger than the WNATIVE cycle's, yet it ranks below
    # it, because it is worth less.
    def first_block_seen() -> list[Any] | None:
        rows = _rows(django_db_blocker, "Opportunity", block_number__gte=planted)
        if not rows:
            return None
        at = [o for o in rows if o.block_number == min(o.block_number for o in rows)]
        return at if {chain.wnative, chain.alpha} <= {o.profit_token for o in at} else None

    ranked = wait_for(first_block_seen, 30, "the opportunities of the first block that saw both gaps")
    priced = [o for o in ranked if o.net_profit_native is not None]
    assert ranked[: len(priced)] == priced, "an unpriced opportunity ranked above a priced one"
    nets = [int(o.net_profit_native) for o in priced]
    assert nets == sorted(nets, reverse=True)
    best_native = next(o for o in priced if o.profit_token == chain.wnative and o.decision == "execute")
    best_alpha = next(o for o in priced if o.profit_token == chain.alpha and o.decision == "execute")
    assert native_gap in best_native.pools and token_gap in best_alpha.pools
    assert chain.wnative not in best_alpha.tokens  # it never touches the native token
    assert ranked.index(best_native) < ranked.index(best_alpha)
    assert int(best_alpha.net_profit) > int(best_native.net_profit)
    assert int(best_alpha.net_profit_native) < int(best_native.net_profit_native)
