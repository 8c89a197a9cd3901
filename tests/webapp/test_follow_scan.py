"""``workers.follow_scan.InlineScan``'s own rules, with a scan and a queue of the test's own
behind its two callables: which heads join one scan, when a block is tried again, when it
goes to the scan queue; and ``workers.tasks.path.decide_here``'s, with stages and queues of
the test's own: where a block goes when its path stage or its decision fails here, in the
follower's lane and in the path task. The real scan
body, stages and queues: tests/chain/test_follower.py."""

from __future__ import annotations

import threading
from typing import Callable

import pytest

from arbbot.chain.follower import Head
from arbbot.types import PoolDelta
from workers.follow_scan import InlineScan
from workers.tasks.path import DECIDED, LOST, NONE_FOUND, TO_ML_QUEUE, TO_PATH_QUEUE, decide_here
from workers.stage import Trace

TIMEOUT_S = 10.0


def head(n: int, arrived: float, first: int | None = None) -> Head:
    return Head(number=n, hash=f"0x{n:064x}", parent_hash=f"0x{n - 1:064x}", arrived_at=arrived,
                first=n if first is None else first)


class Recorder:
    """The scan: records each head it was asked for; ``answers`` (one per call, the last
    repeated) say what it returns, an exception to raise; ``gate`` holds a call until set."""

    def __init__(self, answers: list[object], gate: threading.Event | None = None) -> None:
        self.answers = answers
        self.gate = gate
        self.calls: list[Head] = []
        self.called = threading.Condition()
        self.queued: list[Head] = []

    def scan(self, h: Head) -> int | None:
        with self.called:
            self.calls.append(h)
            self.called.notify_all()
        if self.gate is not None:
            assert self.gate.wait(TIMEOUT_S)
        answer = self.answers[min(len(self.calls), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    def wait_calls(self, n: int) -> None:
        with self.called:
            assert self.called.wait_for(lambda: len(self.calls) >= n, TIMEOUT_S), self.calls

    def lane(self, **kw: object) -> InlineScan:
        return InlineScan(1, scan=self.scan, to_queue=self.queued.append, **kw)  # type: ignore[arg-type]


def wait_for(cond: Callable[[], bool]) -> None:
    done = threading.Event()
    for _ in range(int(TIMEOUT_S / 0.005)):
        if cond():
            return
        done.wait(0.005)
    raise AssertionError("timed out")


def test_heads_arriving_during_a_scan_join_the_next_one() -> None:
    gate = threading.Event()
    r = Recorder([1], gate)
    lane = r.lane().start()
    try:
        lane(head(10, 100.0))
        r.wait_calls(1)
        lane(head(11, 101.0))
        lane(head(13, 103.0, first=12))  # a gap: 12..13
        gate.set()
        r.wait_calls(2)
        wait_for(lambda: lane.stats.scanned == 2)
        assert [(h.first, h.number, h.arrived_at) for h in r.calls] == [(10, 10, 100.0), (11, 13, 101.0)]
    finally:
        lane.stop()
    assert r.queued == [] and lane.stats.retried == 0


def test_a_block_not_scanned_yet_is_tried_again_and_a_newer_head_joins_the_wait() -> None:
    r = Recorder([None, None, None, 2])
    lane = r.lane(retry_s=0.05).start()
    try:
        lane(head(20, 200.0))
        r.wait_calls(2)
        lane(head(21, 201.0))
        r.wait_calls(4)
        wait_for(lambda: lane.stats.scanned == 1)
        assert [h.number for h in r.calls[:2]] == [20, 20]
        assert (r.calls[-1].first, r.calls[-1].number, r.calls[-1].arrived_at) == (20, 21, 200.0)
        assert lane.stats.retried == 3 and len(r.calls) == 4
    finally:
        lane.stop()
    assert r.queued == []


def test_a_block_never_scanned_is_left_to_the_next_scan() -> None:
    r = Recorder([None])
    lane = r.lane(retry_s=0.001, retries=3).start()
    try:
        lane(head(30, 300.0))
        wait_for(lambda: lane.stats.gave_up == 1)
        assert len(r.calls) == 4 and lane.stats.retried == 3
    finally:
        lane.stop()
    assert r.queued == []  # not queued: the queued task would give up the same way


def test_a_scan_that_fails_here_goes_to_the_scan_queue_and_the_next_head_is_scanned_here() -> None:
    r = Recorder([ConnectionError("redis down"), 1])
    lane = r.lane().start()
    try:
        lane(head(40, 400.0))
        wait_for(lambda: len(r.queued) == 1)
        assert r.queued[0].number == 40 and lane.stats.failed == {"ConnectionError": 1}
        lane(head(41, 401.0))
        wait_for(lambda: lane.stats.scanned == 1)
        assert [h.number for h in r.calls] == [40, 41]
    finally:
        lane.stop()
    assert len(r.queued) == 1


def test_a_queue_that_fails_too_is_logged_not_raised() -> None:
    r = Recorder([RuntimeError("no node")])

    def broken(_: Head) -> None:
        raise ConnectionError("no broker")

    lane = InlineScan(1, scan=r.scan, to_queue=broken).start()
    try:
        lane(head(45, 450.0))
        r.wait_calls(1)
        lane(head(46, 460.0))  # the lane goes on
        r.wait_calls(2)
        wait_for(lambda: lane.stats.failed.get("RuntimeError") == 2)
    finally:
        lane.stop()
    assert lane.stats.queued == 0


def test_a_head_waiting_at_stop_goes_to_the_scan_queue() -> None:
    gate = threading.Event()
    r = Recorder([1], gate)
    lane = r.lane().start()
    lane(head(50, 500.0))
    r.wait_calls(1)
    lane(head(51, 501.0))  # waits behind the scan under way
    stopper = threading.Thread(target=lane.stop)
    stopper.start()
    gate.set()
    stopper.join(TIMEOUT_S)
    assert not stopper.is_alive()
    assert [h.number for h in r.calls] == [50]
    assert [(h.first, h.number) for h in r.queued] == [(51, 51)]


def test_a_head_in_a_retry_wait_at_stop_goes_to_the_scan_queue() -> None:
    r = Recorder([None])
    lane = r.lane(retry_s=0.01).start()
    lane(head(60, 600.0))
    r.wait_calls(2)
    lane.stop()
    assert [h.number for h in r.queued] == [60] and lane.stats.gave_up == 0


def test_with_its_scan_thread_gone_every_head_goes_to_the_scan_queue() -> None:
    r = Recorder([1])
    lane = r.lane()
    lane._thread = threading.Thread(target=lambda: None)  # a thread that has ended
    lane._thread.start()
    lane._thread.join()
    lane(head(70, 700.0))
    lane(head(71, 701.0))
    assert [h.number for h in r.queued] == [70, 71] and r.calls == []


# --------------------------------------------------------------- decide_here: path and ml here


class Lane:
    """``decide_here``'s five callables, recording what each got; ``fail`` names the ones
    that raise (``to_path`` / ``to_ml`` included)."""

    def __init__(self, opportunities: list[object], fail: set[str] = frozenset(),  # type: ignore[assignment]
                 first: list[object] | None = None, chooses: bool = True) -> None:
        self.opportunities = opportunities
        self.first = first  # a block in two parts: the first, handed on while evaluating
        self.fail = fail
        self.chooses = chooses  # False: a send sends nothing on to execute
        self.got: dict[str, list[object]] = {}
        self.order: list[str] = []  # every call's name, in turn

    def _call(self, name: str, *args: object) -> None:
        self.got.setdefault(name, []).append(args)
        self.order.append(name)
        if name in self.fail or (args and f"{name}{args[1:2]}" in self.fail):  # e.g. "decide(1,)": part 1's
            raise ConnectionError(f"{name} is down")

    def evaluate(self, d: PoolDelta, first_part: Callable[[list[object]], None]) -> list[object]:
        self._call("evaluate", d)
        if self.first is not None:
            first_part(self.first)
        if "evaluate after the first part" in self.fail:
            raise ConnectionError("evaluate is down")
        return self.opportunities

    def decide(self, opps: list[object], *part: object) -> list[object]:
        self._call("decide", opps, *part)
        return [("decided", o) for o in opps]

    def send(self, decided: list[object], tr: Trace) -> int:
        self._call("send", decided, [m[0] for m in tr.marks or []])
        return len(decided) if self.chooses else 0

    def pause(self, seconds: float) -> None:
        self._call("pause", seconds)

    def record(self, decided: list[object], *, chosen: bool) -> None:
        self._call("record", decided, chosen)

    def to_path(self, d: PoolDelta, tr: Trace) -> None:
        self._call("to_path", d, [m[0] for m in tr.marks or []])

    def to_ml(self, opps: list[object], tr: Trace, *part: object) -> None:
        self._call("to_ml", opps, [m[0] for m in tr.marks or []], *part)

    def run(self, delta: PoolDelta, in_task: bool = False) -> str:
        trace = Trace.start(1.0).mark("scan.start").mark("scan.sent")
        return decide_here(delta, trace, evaluate=self.evaluate, decide=self.decide, send=self.send,
                           record=self.record, to_path=self.to_path, to_ml=self.to_ml, in_task=in_task,
                           pause=None if in_task else self.pause)


@pytest.fixture
def delta() -> PoolDelta:
    return PoolDelta(chain_id=1, block_number=7, block_hash="0x" + "07" * 32, states=[], observed_at=1.0)


SCANNED = ["arrived", "scan.start", "scan.sent"]


def test_a_block_decided_here_sends_its_decisions_with_every_mark(delta: PoolDelta) -> None:
    lane = Lane(["a", "b"])
    assert lane.run(delta) == DECIDED
    assert lane.got["decide"] == [(["a", "b"],)]
    assert lane.got["send"] == [([("decided", "a"), ("decided", "b")], [*SCANNED, "path.start", "path.sent",
                                                                        "ml.start"])]
    assert lane.got["record"] == [([("decided", "a"), ("decided", "b")], True)]
    assert "to_path" not in lane.got and "to_ml" not in lane.got


def test_a_block_with_no_opportunity_sends_nothing(delta: PoolDelta) -> None:
    lane = Lane([])
    assert lane.run(delta) == NONE_FOUND
    assert set(lane.got) == {"evaluate"}


def test_a_path_stage_that_fails_here_hands_the_delta_to_the_path_queue(delta: PoolDelta) -> None:
    lane = Lane(["a"], fail={"evaluate"})
    assert lane.run(delta) == TO_PATH_QUEUE
    # the queue's trace is the one a scan worker would have sent: no mark of the failed try
    assert lane.got["to_path"] == [(delta, SCANNED)]
    assert "decide" not in lane.got and "send" not in lane.got


def test_a_decision_that_fails_here_hands_the_opportunities_to_the_ml_queue(delta: PoolDelta) -> None:
    lane = Lane(["a", "b"], fail={"decide"})
    assert lane.run(delta) == TO_ML_QUEUE
    assert lane.got["to_ml"] == [(["a", "b"], [*SCANNED, "path.start", "path.sent"])]
    assert "send" not in lane.got and "to_path" not in lane.got


def test_a_queue_that_cannot_take_the_block_either_is_logged_not_raised(delta: PoolDelta) -> None:
    assert Lane(["a"], fail={"evaluate", "to_path"}).run(delta) == LOST
    assert Lane(["a"], fail={"decide", "to_ml"}).run(delta) == LOST


def test_a_send_that_fails_is_not_handed_on(delta: PoolDelta) -> None:
    """The decisions were made; the ml queue would decide them again (and publish the
    chosen ones a second time had the execute publish gone out before the failure)."""
    lane = Lane(["a"], fail={"send"})
    assert lane.run(delta) == LOST
    assert "to_ml" not in lane.got and "to_path" not in lane.got


PATH = [*SCANNED, "path.start", "path.sent"]


def test_a_big_block_decides_its_first_part_while_the_rest_is_sized(delta: PoolDelta) -> None:
    """As through the queues: the first part is decided and sent from inside the path
    stage's evaluation, then the second, decided with a copy of the first (ml.decide_block
    keeps the per-pool and per-block rules across the two)."""
    lane = Lane(["c", "d"], first=["a", "b"])
    assert lane.run(delta) == DECIDED
    assert lane.got["decide"] == [(["a", "b"], 1, None), (["c", "d"], 2, ["a", "b"])]
    assert [(decided, marks) for decided, marks in lane.got["send"]] == [
        ([("decided", "a"), ("decided", "b")], [*PATH, "ml.start"]),
        ([("decided", "c"), ("decided", "d")], [*PATH, "ml.start"]),
    ]
    # the records: once, both parts', after the second part's send
    assert lane.got["record"] == [([("decided", x) for x in "abcd"], True)]
    assert "to_ml" not in lane.got and "to_path" not in lane.got


def test_the_lane_pauses_after_a_first_part_that_sent_to_execute_before_sizing_the_rest(
        delta: PoolDelta, monkeypatch: pytest.MonkeyPatch) -> None:
    """The execute worker decides on the cores the rest's sizing would take; a block in
    one part, a first part that chose nothing, or a pause set to 0 pauses never."""
    monkeypatch.setenv("ARBBOT_LANE_YIELD_MS", "40")
    lane = Lane(["c"], first=["a", "b"])
    assert lane.run(delta) == DECIDED
    assert lane.got["pause"] == [(0.04,)]
    assert lane.order == ["evaluate", "decide", "send", "pause", "decide", "send", "record"]

    for quiet in (Lane(["a"]), Lane(["c"], first=["a", "b"], chooses=False)):
        assert quiet.run(delta) == DECIDED
        assert "pause" not in quiet.got
    monkeypatch.setenv("ARBBOT_LANE_YIELD_MS", "0")
    lane = Lane(["c"], first=["a", "b"])
    assert lane.run(delta) == DECIDED
    assert "pause" not in lane.got


def test_the_follower_decides_its_newest_block_with_its_own_pause(delta: PoolDelta,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """``InlineScan`` hands ``decide_here`` its ``_yield`` (the scan body and the decision
    stood in for: the wiring only; the real ones in tests/chain/test_follower.py)."""
    from workers.tasks import path, scan

    def scan_blocks(chain_id: int, block: int, first: int, arrived_at: float, deliver: Callable[..., None]) -> int:
        deliver(delta, Trace.start(arrived_at))
        return 1

    got: list[object] = []
    monkeypatch.setattr(scan, "scan_blocks", scan_blocks)
    monkeypatch.setattr(path, "decide_here", lambda d, tr, pause=None: got.append(pause) or DECIDED)
    monkeypatch.setattr(path, "after_block", lambda chain_id: None)
    lane = InlineScan(1, to_queue=lambda h: None, warm=False)
    assert lane._scan_here(head(7, 1.0)) == 1
    assert got == [lane._yield]


def test_the_lanes_pause_ends_at_a_newer_head_or_a_stop() -> None:
    """``InlineScan._yield``: the next block never waits for it."""
    lane = Recorder([1]).lane()

    def pausing() -> threading.Thread:  # the lane's pause, far longer than the test waits
        waiter = threading.Thread(target=lane._yield, args=(TIMEOUT_S * 100,), daemon=True)
        waiter.start()
        return waiter

    def ends(waiter: threading.Thread) -> None:
        waiter.join(TIMEOUT_S)
        assert not waiter.is_alive()

    waiter = pausing()
    wait_for(lambda: bool(lane._cv._waiters))  # type: ignore[attr-defined]  # it waits on the lane's condition
    lane(head(8, 1.0))  # a newer head arrives meanwhile
    ends(waiter)
    ends(pausing())  # that head still waiting: no pause at all
    lane._pending = None
    lane._stop.set()
    ends(pausing())


def test_a_big_block_with_nothing_past_its_first_part_sends_one_part(delta: PoolDelta) -> None:
    lane = Lane([], first=["a"])
    assert lane.run(delta) == DECIDED
    assert lane.got["decide"] == [(["a"], 1, None)]
    assert len(lane.got["send"]) == 1


def test_a_part_whose_decision_fails_here_goes_to_the_ml_queue_as_that_part(delta: PoolDelta) -> None:
    """The other part is still decided here: whichever process decides the first part
    first keeps its choice for both (ml.decide_part)."""
    lane = Lane(["c"], first=["a", "b"], fail={"decide(1,)"})
    assert lane.run(delta) == TO_ML_QUEUE
    assert lane.got["to_ml"] == [(["a", "b"], PATH, 1, ["a", "b"])]
    assert lane.got["decide"][1] == (["c"], 2, ["a", "b"])
    assert [decided for decided, _ in lane.got["send"]] == [[("decided", "c")]]
    assert lane.got["record"] == [([("decided", "c")], True)]  # the ml task records its own part

    lane = Lane(["c"], first=["a", "b"], fail={"decide(2,)"})
    assert lane.run(delta) == TO_ML_QUEUE
    assert lane.got["to_ml"] == [(["c"], PATH, 2, ["a", "b"])]
    assert [decided for decided, _ in lane.got["send"]] == [[("decided", "a"), ("decided", "b")]]


def test_a_path_stage_that_fails_after_the_first_part_hands_the_block_to_the_path_queue(delta: PoolDelta) -> None:
    """The path queue's worker sizes the whole block again and sends both parts; the ml
    stage decides the first as it was decided here, and the execute claims and the records'
    unique key take a repeat once."""
    lane = Lane(["c"], first=["a"], fail={"evaluate after the first part"})
    assert lane.run(delta) == TO_PATH_QUEUE
    assert lane.got["to_path"] == [(delta, SCANNED)]
    assert lane.got["decide"] == [(["a"], 1, None)]
    assert "record" not in lane.got  # the path queue's worker records the whole block


def test_decisions_whose_send_fails_are_not_recorded(delta: PoolDelta) -> None:
    """As the ml task: its records go after its send."""
    lane = Lane(["c"], first=["a"], fail={"send"})
    assert lane.run(delta) == LOST
    assert "record" not in lane.got
    lane = Lane([], first=["a"])
    lane.fail = {"record"}
    assert lane.run(delta) == LOST  # records that cannot be sent: logged


def test_a_block_none_of_whose_decisions_is_chosen_says_so_to_its_records(delta: PoolDelta) -> None:
    lane = Lane(["a"])
    lane.send = lambda decided, tr: 0  # type: ignore[method-assign]
    assert lane.run(delta) == DECIDED
    assert lane.got["record"] == [([("decided", "a")], False)]  # written at once: none waits on execute


# the path task's own way: what fails raises into the task (its retry, its dead letter)


def test_in_the_path_task_a_path_stage_that_fails_raises_not_handed_to_its_own_queue(delta: PoolDelta) -> None:
    """The path queue would hand the block to itself: the task's retry takes it instead."""
    lane = Lane(["a"], fail={"evaluate"})
    with pytest.raises(ConnectionError, match="evaluate is down"):
        lane.run(delta, in_task=True)
    assert "to_path" not in lane.got and "decide" not in lane.got


def test_in_the_path_task_a_decision_that_fails_still_goes_to_the_ml_queue(delta: PoolDelta) -> None:
    """Its worker retries the decision alone; the task does not size the block again."""
    lane = Lane(["a", "b"], fail={"decide"})
    assert lane.run(delta, in_task=True) == TO_ML_QUEUE
    assert lane.got["to_ml"] == [(["a", "b"], [*SCANNED, "path.start", "path.sent"])]


@pytest.mark.parametrize("fail", [{"decide", "to_ml"}, {"send"}, {"evaluate after the first part"}, {"record"}])
def test_in_the_path_task_nothing_is_lost_quietly(delta: PoolDelta, fail: set[str]) -> None:
    """A part the ml queue cannot take either, a send that fails, a path stage that fails
    after its first part was sent: raised, where the follower's lane logs and goes on."""
    lane = Lane(["c"], first=["a"], fail=fail)
    with pytest.raises(ConnectionError):
        lane.run(delta, in_task=True)
    assert "to_path" not in lane.got


def test_the_lane_says_how_far_it_goes() -> None:
    with pytest.raises(ValueError, match="through: 'path' is not one of scan, ml"):
        InlineScan(1, through="path")
