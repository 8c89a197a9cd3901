"""The stage messages' serializer: the columnar batches that go path -> ml -> execute and
analytics (``workers.tasks.path.find``, ``ml.score``, ``execute.execute``,
``analytics.record_opportunities``) as JSON written and read by orjson, under a content
type of their own (``CONTENT_TYPE``). Every other task keeps Celery's ``json``, and the
workers accept both, so a message of either kind decodes.

Why: a block's batches are each read twice in a worker (Celery's strategy reads the body
in the pool's parent, the task in its child) and written once, ~300 kB for 500 scored
opportunities: ``json.loads`` 2.9 ms, ``dumps`` 3.4 ms against orjson's 0.66 and 0.37
(``bench/pipeline/README.md``, session 40).

What differs from the stdlib, and why it cannot change a value: orjson refuses to write an
integer outside 64 bits (the publish fails, loudly; the batches carry every amount as a
decimal string, and their integers are counts, indexes, block numbers and gas); it writes
NaN and infinities as ``null`` (which the batch decoders refuse where a number is due, as
they refuse NaN: ``arbbot.types``); and it reads an integer outside 64 bits as a float,
which the decoders refuse where an integer is due. The text it writes is JSON, so a dead
letter of this type replays as it was sent."""

from __future__ import annotations

import orjson
from kombu.serialization import register

NAME = "arbbot-json"
CONTENT_TYPE = "application/x-arbbot-json"

register(NAME, orjson.dumps, orjson.loads, content_type=CONTENT_TYPE, content_encoding="utf-8")
