"""The execute stage's writes on its way to a decision, each one query string that PostgreSQL
runs as one implicit transaction, one round trip:

- the claims of a batch (``services.executions_claim``): the rows the ORM would write, their
  commit not waiting for the disk for that transaction only; a redelivered batch claims only
  what no one claimed before;
- the signed rows (``services.transactions_signed``): each execution's final sizing and the
  transactions' rows, the rows the ORM would have written field by field; a row that cannot
  be written (its hash already in the journal) leaves every row of its turn unwritten and
  the sizing as it was.

On the real PostgreSQL, in autocommit as the execute worker runs (not in a test's transaction)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.db import IntegrityError
from django.forms.models import model_to_dict
from django.utils import timezone

from arbbot.execution.follow import TxRecord
from arbbot.execution.runner import Attempt

pytestmark = pytest.mark.django_db(transaction=True)

CHAIN, WETH = 31337, "0x" + "ee" * 20
NOW = time.time()


def claimed(path_id: str) -> Attempt:
    from webapp.core.models import Execution

    Execution.objects.create(created_at=timezone.now(), chain_id=CHAIN, block_number=9, path_id=path_id,
                             status="pending", profit_token=WETH, amount_in=10**18, predicted_profit=10**15)
    return Attempt(chain_id=CHAIN, block_number=9, path_id=path_id, predicted_profit=10**15, profit_token=WETH,
                   amount_in=10**18)


def record(attempt: Attempt, tx_hash: str, sized: int) -> TxRecord:
    return TxRecord(
        attempt=attempt, tx_hash=tx_hash, sender="0x" + "5a" * 20, nonce=4, raw_tx="0x02" + "ab" * 200, kind="trade",
        state="signed", route="public", gas_limit=300_000, max_fee_per_gas=3 * 10**9, max_priority_fee_per_gas=10**9,
        worst_gas_wei=9 * 10**14, sent_block=7, simulated_profit=10**15 + 1, pools=("0x" + "01" * 20,),
        created_at=NOW, final_amount_in=sized, final_predicted_profit=sized // 1000,
    )


def fields(tx_hash: str) -> dict[str, Any]:
    from webapp.core.models import Transaction

    row = model_to_dict(Transaction.objects.get(tx_hash=tx_hash))
    return {k: v for k, v in row.items() if k not in ("id", "tx_hash", "path_id")}


def test_the_signed_row_is_the_orms_row_and_the_sizing_lands_with_it() -> None:
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import _signed_row, transactions_signed

    ours, orms = "0x" + "01" * 32, "0x" + "02" * 32
    transactions_signed([record(claimed("a"), ours, 2 * 10**18)])
    rec = record(claimed("b"), orms, 2 * 10**18)
    Transaction.objects.bulk_create([_signed_row(rec)])
    assert fields(ours) == fields(orms)
    assert fields(ours)["state"] == "signed" and fields(ours)["pools"] == ["0x" + "01" * 20]
    a = Execution.objects.get(path_id="a")
    assert (int(a.final_amount_in), int(a.final_predicted_profit)) == (2 * 10**18, 2 * 10**15)


def test_a_row_that_cannot_be_written_leaves_the_sizing_as_it_was() -> None:
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import transactions_signed

    attempt = claimed("a")
    transactions_signed([record(attempt, "0x" + "01" * 32, 2 * 10**18)])
    with pytest.raises(IntegrityError):  # the same hash again: the insert fails, so must the update
        transactions_signed([record(attempt, "0x" + "01" * 32, 3 * 10**18)])
    assert int(Execution.objects.get(path_id="a").final_amount_in) == 2 * 10**18
    assert Transaction.objects.count() == 1
    transactions_signed([record(attempt, "0x" + "03" * 32, 3 * 10**18)])  # the connection is still usable
    assert int(Execution.objects.get(path_id="a").final_amount_in) == 3 * 10**18


def test_a_turns_rows_are_written_in_one_commit_all_or_none() -> None:
    from webapp.core.models import Execution, Transaction
    from webapp.core.services import transactions_signed

    attempts = [claimed(p) for p in "abc"]
    hashes = ["0x" + f"{k:02x}" * 32 for k in (1, 2, 3)]
    with pytest.raises(IntegrityError):  # the third has the first's hash: none of the three is written
        transactions_signed([record(attempts[0], hashes[0], 2 * 10**18), record(attempts[1], hashes[1], 2 * 10**18),
                             record(attempts[2], hashes[0], 2 * 10**18)])
    assert Transaction.objects.count() == 0
    assert [int(e.final_amount_in) for e in Execution.objects.order_by("path_id")] == [0, 0, 0]
    transactions_signed([record(a, h, (k + 2) * 10**18) for k, (a, h) in enumerate(zip(attempts, hashes))])
    assert {t.tx_hash: t.path_id for t in Transaction.objects.all()} == dict(zip(hashes, "abc"))
    assert [int(e.final_amount_in) for e in Execution.objects.order_by("path_id")] == [2 * 10**18, 3 * 10**18,
                                                                                       4 * 10**18]


def test_a_batch_is_claimed_in_one_go_as_the_orm_would_and_only_once() -> None:
    from django.db import connection

    from tests.execution.executor_helpers import stand_in_scored
    from webapp.core.models import Execution
    from webapp.core.services import _claim_row, executions_claim

    pools = ("0x" + "01" * 20, "0x" + "02" * 20)
    batch = [stand_in_scored(p, pools) for p in ("a", "b", "c")]
    assert executions_claim(batch) == [True, True, True]
    with connection.cursor() as cur:  # the commit without flush was for that transaction only
        cur.execute("SELECT current_setting('synchronous_commit')")
        assert cur.fetchone() == ("on",)
    _claim_row(stand_in_scored("d", pools)).save()
    rows = {e.path_id: model_to_dict(e, exclude=["id", "path_id", "created_at"]) for e in Execution.objects.all()}
    assert rows["a"] == rows["b"] == rows["c"] == rows["d"] and rows["a"]["status"] == "pending"
    # redelivered, with one new: only that one is claimed here
    assert executions_claim([*batch, stand_in_scored("e", pools)]) == [False, False, False, True]
    assert Execution.objects.count() == 5
