"""``arbbot deadletters list|replay``: the dead-letter queue, for an operator.

``list`` shows each dead letter (task id, task, the queue it came from, size, when, why)
without consuming any; ``replay --id ID`` (repeatable) or ``replay --all`` publishes them
back to their queues, each acknowledged only once the broker has the copy. The queue and
its headers are ``workers.deadletters``'."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from webapp.core.cli import CliError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("deadletters", help="inspect and replay the dead-letter queue")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    ls = actions.add_parser("list", help="show the dead letters (none is consumed)")
    ls.add_argument("--limit", type=int, default=100, help="at most this many (oldest first; default 100)")
    ls.set_defaults(handler=run_list)
    rp = actions.add_parser("replay", help="publish dead letters back to the queue they came from")
    which = rp.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", action="append", dest="ids", metavar="TASK_ID", help="a task id (repeatable)")
    which.add_argument("--all", action="store_true", help="every dead letter")
    rp.set_defaults(handler=run_replay)


def _broker() -> dict[str, Any]:
    """The broker's URL and TLS options, as the workers connect."""
    from arbbot.config import get_settings

    settings = get_settings()
    return {"broker_url": settings.broker_url, "ssl": settings.broker_ssl()}


def run_list(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from workers.deadletters import list_dead_letters

    if opts["limit"] < 1:
        raise CliError("--limit must be at least 1", code=2)
    letters = list_dead_letters(limit=opts["limit"], **_broker())
    out(f"{len(letters)} dead letter(s)")
    for d in letters:
        at = "?" if d.dead_lettered_at is None else dt.datetime.fromtimestamp(d.dead_lettered_at, dt.UTC).isoformat(
            timespec="seconds")
        out(f"{d.task_id}  {d.task}  from {d.queue}  {d.size_bytes} bytes  at {at}  reason: {d.reason}")
    return 0


def run_replay(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from workers.deadletters import replay

    ids = None if opts["all"] else opts["ids"]
    done = replay(task_ids=ids, **_broker())
    for d in done:
        out(f"replayed {d.task_id} ({d.task}) to {d.queue}")
    missing = set(ids or ()) - {d.task_id for d in done}
    if missing:
        raise CliError(f"not in the dead-letter queue (or not from a stage queue): {', '.join(sorted(missing))}")
    out(f"{len(done)} replayed")
    return 0
