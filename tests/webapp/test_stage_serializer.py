"""The stage messages' serializer (``workers.serializer``, orjson under a content type of its
own): the four stage tasks use it and every other task keeps Celery's ``json``; a batch
comes out of it as it would out of the stdlib's JSON, value for value; what orjson would
write or read differently is refused, never changed (an integer past 64 bits, NaN); and a
worker still takes a stage message written as ``json``. Through the real broker: a stage
task's message published by the app arrives under its content type and decodes."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kombu import Connection, Exchange, Queue
from kombu.exceptions import EncodeError
from kombu.serialization import dumps, loads, prepare_accept_content

from arbbot.errors import WireFormatError
from arbbot.types import (
    Opportunity,
    PoolDelta,
    ScoredOpportunity,
    opportunities_from_wire,
    opportunities_to_wire,
    scored_from_wire,
    scored_to_wire,
)
from tests.test_types import deltas, opportunities, opportunity_wire, scored
from workers import queues, serializer
from workers.celery_app import app

ACCEPT = prepare_accept_content(app.conf.accept_content)  # the names as content types, as a worker takes them
STAGE_TASKS = ("workers.tasks.path.find", "workers.tasks.ml.score", "workers.tasks.execute.execute",
               "workers.tasks.analytics.record_opportunities")


def through(obj: Any, name: str = serializer.NAME) -> Any:
    """``obj`` written and read as a worker does: kombu's registry, the app's accepted types."""
    content_type, encoding, body = dumps(obj, serializer=name)
    return loads(body, content_type, encoding, accept=ACCEPT)


def test_the_stage_tasks_use_it_and_the_others_keep_json() -> None:
    import workers.tasks.analytics  # noqa: F401  (registers the tasks)
    import workers.tasks.execute  # noqa: F401
    import workers.tasks.ml  # noqa: F401
    import workers.tasks.path  # noqa: F401

    for name in STAGE_TASKS:
        assert app.tasks[name].serializer == serializer.NAME, name
    others = [t for name, t in app.tasks.items() if name.startswith("workers.") and name not in STAGE_TASKS]
    assert others and all(t.serializer == "json" for t in others), [t.name for t in others if t.serializer != "json"]
    assert dumps({}, serializer=serializer.NAME)[0] == serializer.CONTENT_TYPE


@settings(max_examples=60, deadline=None)
@given(st.lists(scored, max_size=4), st.lists(opportunities(), max_size=4), deltas)
def test_a_batch_comes_out_as_the_stdlib_json_gives_it(batch: list[ScoredOpportunity], opps: list,
                                                      delta: PoolDelta) -> None:
    for wire in (scored_to_wire(batch), opportunities_to_wire(opps), delta.to_wire()):
        assert through(wire) == json.loads(json.dumps(wire))
    assert scored_from_wire(through(scored_to_wire(batch))) == batch
    assert opportunities_from_wire(through(opportunities_to_wire(opps))) == opps
    assert PoolDelta.from_wire(through(delta.to_wire())) == delta


def test_what_orjson_would_change_is_refused() -> None:
    # an integer past 64 bits: the publish fails instead of a value changing on the way
    with pytest.raises(EncodeError):
        dumps({"n": 2**64}, serializer=serializer.NAME)
    assert through({"n": 2**64 - 1}) == {"n": 2**64 - 1}
    # read past 64 bits it would be a float: where a batch wants an integer, that is refused
    o = opportunities_to_wire([_opp()])
    body = json.dumps({**o, "gas_estimate": [2**70]}).encode()
    with pytest.raises(WireFormatError, match="gas_estimate"):
        opportunities_from_wire(loads(body, serializer.CONTENT_TYPE, "utf-8", accept=ACCEPT))
    # NaN is written as null; a score that is not a number is refused, as NaN is
    s = ScoredOpportunity(_opp(), math.nan, "skip")
    wire = through(scored_to_wire([s]))
    assert wire["score"] == [None]
    with pytest.raises(WireFormatError, match="score"):
        scored_from_wire(wire)


def test_a_stage_message_written_as_json_is_still_taken() -> None:
    wire = scored_to_wire([ScoredOpportunity(_opp(), 1.5, "skip")])
    assert scored_from_wire(through(wire, "json")) == scored_from_wire(through(wire))


def test_a_stage_task_s_message_crosses_the_broker_under_its_type() -> None:
    """Published by the app as the path stage publishes, read back off a queue of the test's
    own on the real RabbitMQ: the content type is orjson's and the body decodes to the batch."""
    import workers.tasks.ml as ml

    wire = opportunities_to_wire([_opp()])
    name = f"test-serializer-{uuid.uuid4().hex[:8]}"
    with Connection(app.conf.broker_url) as conn:
        # bound to the fleet's exchange under a routing key of its own: no worker's queue sees it
        queue = Queue(name, exchange=Exchange(queues.EXCHANGE_NAME, "direct"), routing_key=name, auto_delete=True)
        queue(conn.default_channel).declare()
        try:
            # publisher confirms (the app's broker options): the broker holds it on return
            ml.score.apply_async((wire,), routing_key=name)
            message = queue(conn.default_channel).get(no_ack=True, accept=ACCEPT)
            assert message is not None, "the message did not arrive"
            assert message.content_type == serializer.CONTENT_TYPE
            args, kwargs, _ = message.decode()
            assert opportunities_from_wire(args[0]) == opportunities_from_wire(wire)
        finally:
            queue(conn.default_channel).delete()


def _opp() -> Opportunity:
    return Opportunity.from_wire(opportunity_wire())
