"""The signing key never leaves the process that signs: not into a log line, a database
row, a Redis key, a Celery message or a task event (what Flower shows).

A live fleet run on the devnet (the shared ``fleet`` fixture, tests/e2e/conftest.py: one real worker
per queue plus beat, ``ARBBOT_MODE=live``) trades a planted gap while two spy queues copy
every message the fleet publishes to the ``arbbot`` exchange and every task event on
``celeryev``; the spans the fleet exports reach an in-process OTLP collector. Afterwards
everything the run wrote is searched for the key in each form it
could take: hex in any case with or without ``0x``, base64 and base64url of its 32 bytes,
the raw bytes, the decimal integer. The search is shown to find each form when planted in
the same haystack, so a clean result is not a vacuous one.

The signer's address is public (it is the executor's authorised caller, on chain) and is
not searched for.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import re
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from celery.events.event import get_exchange
from kombu import Connection, Queue, binding

from arbbot.devnet.scenarios import plant_price_gap
from arbbot.types import ExecutionResult, Opportunity, ScoredOpportunity
from tests.e2e.fleet import wait_for
from workers import queues

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

EXAMPLE_KEY = "0x8da4ef21b864d2cc526dbdb2a120bd2874c36c9d0a1fb7f8c63d7f7a8b41de8f"  # not a key in use


# --- the search ---------------------------------------------------------------------------


def key_forms(key: str) -> dict[str, bytes]:
    """Every form of the key worth searching for. Hex is matched case-insensitively (the
    haystack is lower-cased for it), which covers ``0x``-prefixed, bare, upper and mixed case."""
    digits = key[2:] if key.lower().startswith("0x") else key
    raw = bytes.fromhex(digits)
    assert len(raw) == 32
    return {
        "hex": digits.lower().encode(),
        "base64": base64.b64encode(raw).rstrip(b"="),
        "base64url": base64.urlsafe_b64encode(raw).rstrip(b"="),
        "raw bytes": raw,
        "decimal": str(int.from_bytes(raw, "big")).encode(),
    }


def find_key(haystack: bytes, key: str) -> list[str]:
    """The forms of ``key`` found in ``haystack`` (empty: none)."""
    lowered = haystack.lower()
    found = []
    for name, needle in key_forms(key).items():
        if (lowered if name == "hex" else haystack).find(needle) >= 0:
            found.append(name)
    return found


def planted_forms(key: str) -> dict[str, bytes]:
    """How the key would appear if something printed or stored it, one per way."""
    digits = key[2:].lower()
    raw = bytes.fromhex(digits)
    return {
        "0x hex": f"signer_key='0x{digits}'".encode(),
        "bare hex": f"key={digits}".encode(),
        "upper case": f"KEY=0X{digits.upper()}".encode(),
        "base64": b"k:" + base64.b64encode(raw),
        "base64url": b"k:" + base64.urlsafe_b64encode(raw),
        "raw bytes": b"\x00\x01" + raw + b"\xff",
        "decimal": f"int={int(digits, 16)}".encode(),
        "json bytea": json.dumps({"col": "\\x" + digits}).encode(),
    }


@pytest.mark.parametrize("form", sorted(planted_forms(EXAMPLE_KEY)))
def test_the_search_finds_each_form_of_a_key(form: str) -> None:
    haystack = b"some log line\n" + planted_forms(EXAMPLE_KEY)[form] + b"\nmore"
    assert find_key(haystack, EXAMPLE_KEY), f"{form} not found"
    other = "0x" + "11" * 32
    assert not find_key(haystack, other)


# --- the wire formats ---------------------------------------------------------------------

OPPORTUNITY_FIELDS = {
    "chain_id",
    "block_number",
    "block_hash",
    "path_id",
    "pools",
    "tokens",
    "amount_in",
    "amount_out",
    "gas_estimate",
    "gas_price_wei",
    "gas_cost",
    "hop_kinds",
    "observed_at",
    "profit_native",
    "price_pools",
}
SCORED_FIELDS = {"opportunity", "score", "decision", "reason", "model"}
RESULT_FIELDS = {
    "chain_id",
    "block_number",
    "path_id",
    "status",
    "predicted_profit",
    "realised_profit",
    "tx_hash",
    "gas_used",
    "gas_price_wei",
    "mined_block",
    "reason",
    "profit_token",
    "amount_in",
}
KEYLIKE_NAME = re.compile(r"key|secret|sign|private|passw|mnemonic|seed|keystore", re.I)
HEX32 = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield f"{path}.{k}", k
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, value


def test_execute_messages_have_no_field_that_could_carry_a_key() -> None:
    """The execute queue's messages are ScoredOpportunity wire dicts and the analytics
    queue's are ExecutionResults: their fields are exactly these (a new field is a review),
    none is named like a secret, and the only 32-byte hex value is the block hash."""
    opp = Opportunity(
        chain_id=31337,
        block_number=12,
        block_hash="0x" + "ab" * 32,
        path_id="v2:0xpool>v2:0xpool2",
        pools=("0x" + "01" * 20, "0x" + "02" * 20),
        tokens=("0x" + "03" * 20, "0x" + "04" * 20, "0x" + "03" * 20),
        amount_in=10**18,
        amount_out=10**18 + 5,
        gas_estimate=200_000,
        gas_price_wei=10**9,
        gas_cost=2,
        hop_kinds=("v2", "v2"),
        observed_at=1.5,
    )
    scored = ScoredOpportunity(
        opp, score=0.9, decision="execute", reason="", model="rule"
    ).to_wire()
    assert set(scored) == SCORED_FIELDS
    assert set(scored["opportunity"]) == OPPORTUNITY_FIELDS
    result = ExecutionResult(
        chain_id=31337,
        block_number=12,
        path_id=opp.path_id,
        status="success",
        predicted_profit=3,
        realised_profit=3,
        tx_hash="0x" + "cd" * 32,
        gas_used=100,
        gas_price_wei=10**9,
        mined_block=13,
        profit_token=opp.tokens[0],
        amount_in=opp.amount_in,
    ).to_wire()
    assert set(result) == RESULT_FIELDS
    # the record's free-form ``extra`` dict stays in the process; it is not on the wire
    assert (
        "extra" in {f.name for f in dataclasses.fields(ExecutionResult)}
        and "extra" not in result
    )
    for wire, hex_ok in ((scored, {".opportunity.block_hash"}), (result, {".tx_hash"})):
        for path, value in _walk(wire):
            if path.rsplit(".", 1)[-1] == value:  # a field name
                assert not KEYLIKE_NAME.search(str(value)), (
                    f"{path}: a key-like field name"
                )
            elif isinstance(value, str) and HEX32.match(value):
                assert path in hex_ok, (
                    f"{path}: a 32-byte hex value where none is expected"
                )


# --- the live run ------------------------------------------------------------------------


@pytest.fixture
def spies(fleet: dict[str, Any]) -> Iterator[dict[str, Queue]]:
    """Two exclusive queues copying what the fleet publishes: every stage and dead-letter
    message (bound to the same exchanges with the same routing keys as the real queues, so
    nothing is taken from them) and every task event, the stream Flower renders."""
    tag = uuid.uuid4().hex[:8]
    with Connection(fleet["env"]["ARBBOT_BROKER_URL"]) as conn:
        channel = conn.channel()
        messages = Queue(
            f"spy-messages-{tag}",
            bindings=[
                binding(queues.exchange, routing_key=q) for q in queues.STAGE_QUEUES
            ]
            + [binding(queues.dlx, routing_key=queues.DEAD_LETTER_QUEUE)],
            exclusive=True,
            auto_delete=True,
            channel=channel,
        )
        events = Queue(
            f"spy-events-{tag}",
            exchange=get_exchange(conn),
            routing_key="#",
            exclusive=True,
            auto_delete=True,
            channel=channel,
        )
        for q in (messages, events):
            q.declare()
        yield {"messages": messages, "events": events}
        channel.close()


def _drain(queue: Queue) -> list[bytes]:
    out = []
    while (m := queue.get(no_ack=True)) is not None:
        out.append(m.body if isinstance(m.body, bytes) else str(m.body).encode())
        out.append(json.dumps(m.headers, default=str).encode())
        out.append(json.dumps(m.properties, default=str).encode())
    return out


def _database_dump(django_db_blocker: Any) -> dict[str, bytes]:
    """Every row of every table of the test database, as JSON text (bytea as \\x hex)."""
    from django.db import connection

    dump = {}
    with django_db_blocker.unblock(), connection.cursor() as cur:
        for table in connection.introspection.table_names():
            cur.execute(f'SELECT row_to_json(t)::text FROM "{table}" t')
            dump[table] = "\n".join(r[0] for r in cur.fetchall()).encode()
    return dump


def _redis_dump(prefix: str) -> dict[str, bytes]:
    import redis as redis_lib

    from arbbot.config import get_settings

    r = redis_lib.Redis.from_url(get_settings().redis_url)
    dump: dict[str, bytes] = {}
    for key in r.scan_iter(match=prefix + "*", count=1000):
        kind = r.type(key).decode()
        if kind == "string":
            value: Any = r.get(key)
        elif kind == "hash":
            value = r.hgetall(key)
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "set":
            value = r.smembers(key)
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = r.xrange(key)
        else:
            value = b""
        dump[key.decode()] = (
            key + b"\n" + (value if isinstance(value, bytes) else repr(value).encode())
        )
    return dump


def test_a_live_run_never_writes_the_key_anywhere(
    fleet: dict[str, Any],
    spies: dict[str, Queue],
    django_db_blocker: Any,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from webapp.core.models import Execution

    caplog.set_level(logging.DEBUG)
    devnet_dir = Path(fleet["env"]["ARBBOT_DEVNET_DIR"])
    key = (devnet_dir / "signer.key").read_text().strip()
    rpc, dep = fleet["rpc"], fleet["dep"]
    assert fleet["env"]["ARBBOT_MODE"] == "live"

    # Trade: a planted gap, executed and mined, while the spies listen.
    before = rpc.block_number()
    plant_price_gap(rpc, dep, "WETH", "USDC", 4.0, dex="sushiswap")

    def executed() -> Any:
        with django_db_blocker.unblock():
            return Execution.objects.filter(
                chain_id=dep.chain_id, status="success", block_number__gt=before
            ).first()

    row = wait_for(executed, 90, "a live execution of the planted gap")
    logging.getLogger(__name__).info("executed %s in %s", row.path_id, row.tx_hash)
    # each process exports its spans in its own time (a batch every 200 ms here): the
    # trade's are in the haystack once they have arrived, not as soon as its row is written
    wait_for(lambda: any(row.path_id.encode() in b for b in list(fleet["traces"].bodies)), 30,
             f"the spans of execution {row.path_id} over OTLP")

    messages, events = _drain(spies["messages"]), _drain(spies["events"])
    logs = {p.name: p.read_bytes() for p in sorted(fleet["logs"].glob("*.log"))}
    logs["anvil.log"] = (
        (devnet_dir / "anvil.log").read_bytes()
        if (devnet_dir / "anvil.log").exists()
        else b""
    )
    out, err = capfd.readouterr()
    haystacks: dict[str, bytes] = {
        **{f"log {name}": text for name, text in logs.items()},
        "this test's logging": caplog.text.encode(),
        "this test's stdout/stderr": (out + err).encode(),
        "messages published by the fleet": b"\n".join(messages),
        "task events (Flower's view)": b"\n".join(events),
        "spans exported over OTLP (Jaeger's view)": b"\n".join(fleet["traces"].bodies),
        **{f"table {t}": rows for t, rows in _database_dump(django_db_blocker).items()},
        **{
            f"redis {k}": v
            for k, v in _redis_dump(fleet["env"]["ARBBOT_REDIS_PREFIX"]).items()
        },
    }

    # The haystacks hold the run: the trade is in the logs, the rows, the messages and events.
    everything = b"\n".join(haystacks.values())
    assert row.tx_hash.encode() in haystacks[f"table {Execution._meta.db_table}"]
    assert any(b"workers.tasks.execute.execute" in m for m in messages), (
        "no execute message was copied"
    )
    assert row.path_id.encode() in b"\n".join(messages)
    assert b"task-received" in b"\n".join(
        events
    ) and b"workers.tasks.execute.execute" in b"\n".join(events)
    assert logs["execute.log"] and any(k.startswith("redis ") for k in haystacks)
    assert row.path_id.encode() in haystacks["this test's logging"]
    assert row.path_id.encode() in haystacks["spans exported over OTLP (Jaeger's view)"]
    # ... and the search would find the key in them if it were there.
    for form, planted in planted_forms(key).items():
        assert find_key(everything + planted, key), (
            f"the search missed the key planted as {form}"
        )

    leaks = {
        where: forms
        for where, text in haystacks.items()
        if (forms := find_key(text, key))
    }
    assert not leaks, f"the signing key was found in: {sorted(leaks.items())}"
