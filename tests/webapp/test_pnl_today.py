"""``selectors.pnl_today_wei`` counts only executions that sent a transaction, and PostgreSQL
can answer it from their partial index alone (``execution_sent_by_day``), whatever the number
of the day's decisions that sent nothing. Timed: bench/execution/pnl.py."""

from __future__ import annotations

import pytest
from django.utils import timezone

from webapp.core.models import Execution
from webapp.core.selectors import pnl_today_wei

WETH = "0x" + "ee" * 20


def row(i: int, status: str, chain: int = 31337, **kw: object) -> Execution:
    return Execution(created_at=timezone.now(), chain_id=chain, block_number=i, path_id=f"p{i}", status=status,
                     profit_token=WETH, **kw)


@pytest.mark.django_db
def test_only_sent_executions_count_and_the_partial_index_serves_the_query() -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    Execution.objects.bulk_create([
        *(row(i, "dropped", realised_profit=10**18, gas_used=1, gas_price_wei=1) for i in range(50)),  # nothing sent
        row(100, "success", tx_hash="0x" + "01" * 32, realised_profit=5 * 10**15, realised_profit_native=6 * 10**15,
            gas_used=200_000, gas_price_wei=10**9),
        row(101, "reverted", tx_hash="0x" + "02" * 32, gas_used=100_000, gas_price_wei=2 * 10**9),
        row(102, "success", tx_hash="0x" + "03" * 32, realised_profit=10**15, gas_used=0, gas_price_wei=0),
        row(103, "success", chain=8453, tx_hash="0x" + "04" * 32, realised_profit_native=10**20),
    ])
    assert pnl_today_wei(31337, WETH) == 6 * 10**15 + 10**15 - 200_000 * 10**9 - 100_000 * 2 * 10**9

    with CaptureQueriesContext(connection) as asked:
        pnl_today_wei(31337, WETH)
    (query,) = asked.captured_queries
    with connection.cursor() as cur:  # a table this small is read whole unless told not to
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN " + query["sql"])
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "execution_sent_by_day" in plan, plan
