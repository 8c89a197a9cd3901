"""The analytics stage's write (``services.opportunities_record``, one COPY per batch): every
row lands with its money exact at any size (uint256 in ``NUMERIC``), addresses lower-cased,
an unpriced opportunity's native values null, and the latency from the block's arrival.
Real PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal

import pytest

from arbbot.errors import WireFormatError
from arbbot.types import Opportunity, ScoredOpportunity
from webapp.core import services
from webapp.core.models import Opportunity as OpportunityRow

pytestmark = pytest.mark.django_db

UINT256_MAX = 2**256 - 1
WETH, TOKEN = "0x" + "Ee" * 20, "0x" + "a0" * 20
POOLS = ("0x" + "B1" * 20, "0x" + "b2" * 20)


def scored(path_id: str, amount_in: int, amount_out: int, profit_native: int | None,
           decision: str = "skip", observed_at: float = 0.0) -> ScoredOpportunity:
    opp = Opportunity(
        chain_id=31337, block_number=2**63 - 1, block_hash="0x" + "ab" * 32, path_id=path_id, pools=POOLS,
        tokens=(WETH, TOKEN, WETH), amount_in=amount_in, amount_out=amount_out, gas_estimate=200_000,
        gas_price_wei=10**9, gas_cost=2 * 10**14, observed_at=observed_at, profit_native=profit_native,
    )
    return ScoredOpportunity(opp, 1.25, decision, "why" * 100)  # type: ignore[arg-type]


def test_a_batch_is_recorded_exactly() -> None:
    batch = [
        scored("big", UINT256_MAX - 10**30, UINT256_MAX, 10**30 - 1, "execute", observed_at=999.5),
        scored("unpriced", 10**18, 10**18 + 1, None),
        scored("loss", 10**18, 10**18 - 7, -7),
    ]
    assert services.opportunities_record(batch, now=1000.0) == 3
    rows = {r.path_id: r for r in OpportunityRow.objects.all()}
    assert set(rows) == {"big", "unpriced", "loss"}
    big = rows["big"]
    assert big.amount_in == Decimal(UINT256_MAX - 10**30) and big.amount_out == Decimal(UINT256_MAX)
    assert big.net_profit == Decimal(10**30 - 2 * 10**14)
    assert big.profit_native == Decimal(10**30 - 1)
    assert big.net_profit_native == Decimal(10**30 - 1 - 200_000 * 10**9)
    assert big.block_number == 2**63 - 1 and big.decision == "execute" and big.score == 1.25
    assert big.latency_ms == pytest.approx(500.0)
    assert big.created_at.timestamp() == 1000.0
    assert big.pools == [p.lower() for p in POOLS] and big.tokens == [WETH.lower(), TOKEN, WETH.lower()]
    assert big.profit_token == WETH.lower() and len(big.reason) == 200
    assert rows["unpriced"].profit_native is None and rows["unpriced"].net_profit_native is None
    assert rows["unpriced"].latency_ms is None
    assert rows["loss"].net_profit == Decimal(-7 - 2 * 10**14)


def test_an_empty_batch_writes_nothing() -> None:
    assert services.opportunities_record([]) == 0
    assert OpportunityRow.objects.count() == 0


def test_a_bad_address_fails_the_whole_batch() -> None:
    """An address is written into a JSON array unescaped only because it was checked: one
    that is not an address fails the batch, and nothing of it is written."""
    bad = scored("bad", 10**18, 10**18 + 1, 1)
    forged = dataclasses.replace(bad.opportunity, pools=(POOLS[0], '0x","0x' + "00" * 18))
    with pytest.raises(WireFormatError):
        services.opportunities_record([scored("good", 1, 2, 1), ScoredOpportunity(forged, 0.0, "skip")])
    assert OpportunityRow.objects.count() == 0


def test_a_batch_delivered_twice_is_recorded_once() -> None:
    batch = [scored("a", 10, 12, 2), scored("b", 10, 13, 3)]
    assert services.opportunities_record(batch, now=1000.0) == 2
    # redelivered (its worker died before the ack), and a later batch repeating one of them
    # with a new one, and a batch naming one twice: each opportunity has one row
    assert services.opportunities_record(batch, now=1001.0) == 0
    assert services.opportunities_record([batch[1], scored("c", 10, 14, 4)], now=1002.0) == 1
    assert services.opportunities_record([scored("d", 1, 2, 1)] * 2, now=1003.0) == 1
    assert sorted(OpportunityRow.objects.values_list("path_id", flat=True)) == ["a", "b", "c", "d"]
    # another block hash at the same height (a reorg) is another opportunity
    other = ScoredOpportunity(dataclasses.replace(batch[0].opportunity, block_hash="0x" + "cd" * 32), 1.0, "skip")
    assert services.opportunities_record([other], now=1004.0) == 1


def test_the_database_refuses_a_second_row_for_an_opportunity() -> None:
    from django.db import IntegrityError, transaction

    services.opportunities_record([scored("a", 10, 12, 2)], now=1000.0)
    row = OpportunityRow.objects.get()
    row.pk = None
    with pytest.raises(IntegrityError), transaction.atomic():
        row.save(force_insert=True)


def _staged() -> bool:
    """Whether this session's staging table exists (the conflict path made it)."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('pg_temp.opportunity_stage') IS NOT NULL")
        return bool(cur.fetchone()[0])


def test_a_new_batch_goes_straight_in_and_only_a_repeat_is_staged() -> None:
    """The rows go straight into the table; the staging table is made only when one of them
    is there already (here, in the test's one transaction, it is made for the repeat)."""
    batch = [scored("a", 10, 12, 2), scored("b", 10, 13, 3)]
    assert services.opportunities_record(batch, now=1000.0) == 2 and not _staged()
    assert services.opportunities_record([batch[0], scored("c", 10, 14, 4)], now=1001.0) == 1 and _staged()
    assert sorted(OpportunityRow.objects.values_list("path_id", flat=True)) == ["a", "b", "c"]


def test_features_are_recorded_as_their_dictionaries_from_a_table_or_the_wire() -> None:
    """The ml stage's rows of a ``FeatureTable``, the same batch decoded off the wire, and
    dictionaries: each row's ``features`` column is the same JSON object, float for float."""
    from arbbot.types import FeatureRow, FeatureTable, scored_from_wire, scored_to_wire

    values = [[0.1, -0.0, 1e-300, 1.7976931348623157e308], [3.0, 2.5e-7, 123456789.123, -1e22]]
    names = ("hops", "edge", "gas_share", "depth")
    table = FeatureTable(names, lambda: values)
    base = [scored(f"t{i}", 10, 12 + i, 2) for i in range(2)]
    lazy = [dataclasses.replace(s, features=FeatureRow(table, i)) for i, s in enumerate(base)]
    decoded = [dataclasses.replace(s, opportunity=dataclasses.replace(s.opportunity, path_id="w" + s.opportunity.path_id))
               for s in scored_from_wire(json.loads(json.dumps(scored_to_wire(lazy))))]
    eager = [dataclasses.replace(s, opportunity=dataclasses.replace(s.opportunity, path_id="d" + s.opportunity.path_id),
                                 features=dict(zip(names, values[i]))) for i, s in enumerate(base)]
    assert isinstance(decoded[0].features, FeatureRow)
    assert services.opportunities_record([*lazy, *decoded, *eager], now=1000.0) == 6
    # jsonb keeps a number as NUMERIC: 1.79e308 comes back as its digits, an int; float() it
    got = {p: {k: float(v) for k, v in f.items()} for p, f in OpportunityRow.objects.values_list("path_id", "features")}
    for i in range(2):
        assert got[f"t{i}"] == got[f"wt{i}"] == got[f"dt{i}"] == dict(zip(names, values[i]))


def test_a_feature_table_of_numpys_floats_is_recorded_as_python_floats_would_be() -> None:
    """A ``FeatureTable`` whose rows hold numpy's floats (the fleet's hold Python floats,
    but the type says only floats) records the same object: the features' writer takes
    numpy's scalars, where orjson alone refuses them."""
    import numpy as np

    from arbbot.types import FeatureRow, FeatureTable

    names = ("hops", "edge")
    table = FeatureTable(names, lambda: [[np.float64(2.0), np.float32(0.25)]])
    assert services.opportunities_record([dataclasses.replace(scored("n", 10, 12, 2), features=FeatureRow(table, 0))],
                                         now=1000.0) == 1
    assert OpportunityRow.objects.get(path_id="n").features == {"hops": 2.0, "edge": 0.25}


@pytest.mark.django_db(transaction=True)
def test_two_writers_of_overlapping_batches_side_by_side_record_each_once() -> None:
    """Two analytics processes writing overlapping batches at the same instant (a batch and
    its redelivery): the second ``COPY`` waits on the first's rows, is refused when those
    commit, and goes through the staging table; every opportunity has one row."""
    import threading

    from django.db import connection

    batches = [[scored(f"p{i}", 10, 12 + i, 2) for i in range(k, k + 300)] for k in (0, 150)]
    barrier, counts, errors = threading.Barrier(2), [0, 0], []

    def write(k: int) -> None:
        try:
            barrier.wait(timeout=10)
            counts[k] = services.opportunities_record(batches[k], now=1000.0 + k)
        except Exception as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sum(counts) == 450, counts  # what each wrote: all its rows, or those the other had not
    assert OpportunityRow.objects.count() == 450
    assert len(set(OpportunityRow.objects.values_list("path_id", flat=True))) == 450
