"""Fills on the backtest's own anvil (``arbbot.replay.chain``): a devnet market recorded by
the scan stage's Scanner and Recorder (state dump at the start), replayed once with the
executor's exact calldata run on an anvil loaded from the dump and kept at each block's
recorded pool states, and once by the exact pool math: the genuine contracts pay, to the
wei, what the math says, on V2 and V3 pools, trade after trade as paper fills move them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from arbbot.chain.abi import int_arg, int_word, selector
from arbbot.replay.backtest import BacktestStrategy, open_chain, run
from arbbot.replay.chain import AnvilChain, ChainError
from arbbot.replay.recording import Recording
from arbbot.replay.report import executed_cycles
from arbbot.types import V3PoolState
from bench.backtest.run import record


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    path, _ = record(tmp_path_factory.mktemp("market"), blocks=40, swaps_per_block=4, seed=11)
    return Recording.open(path)


def test_anvil_fills_equal_the_pool_math_to_the_wei(recording: Recording, tmp_path: Path) -> None:
    chain = open_chain(recording, log_path=tmp_path / "anvil.log")
    assert isinstance(chain, AnvilChain)
    try:
        on_anvil = run(recording, BacktestStrategy(), chain=chain)
        assert chain.writes > 0
        chain.reset()
        waiting = run(recording, BacktestStrategy(), chain=chain, ahead=False)  # each fill on its answer
    finally:
        chain.close()
    by_math = run(recording, BacktestStrategy())
    assert on_anvil.fills == "anvil" and by_math.fills == "math"
    # answered ahead and verified after: the very results of waiting for each answer, gas too

    def timeless(result: object) -> list[object]:
        return [dataclasses.replace(r, extra={k: v for k, v in r.extra.items() if k != "decided_at"})
                for r in result.executions]  # type: ignore[attr-defined]

    assert timeless(on_anvil) == timeless(waiting)

    def outcome(result: object) -> list[tuple[int, str, str, int, int]]:
        return [(r.block_number, r.path_id, r.status, r.realised_profit, r.extra.get("simulated_profit", 0))
                for r in result.executions]  # type: ignore[attr-defined]

    traded = [r for r in on_anvil.executions if r.status == "simulated"]
    assert len(traded) >= 5
    assert outcome(on_anvil) == outcome(by_math)
    # the anvil's gas is measured, the math's is the path stage's estimate
    assert [r.extra["gas_limit"] for r in traded] != [r.extra["gas_limit"] for r in by_math.executions
                                                       if r.status == "simulated"]


def test_gas_estimates_confirmed_from_a_guess_are_anvils_own(
    recording: Recording, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The estimates confirmed from a guess (a trace, an ``eth_call`` at the guess and one
    gas below) equal anvil's ``eth_estimateGas`` search, to the gas; a guess one gas too high
    is not confirmed (the call succeeds below it) and anvil's search answers instead. (The
    guess plus one is one gas too high wherever the guess was right; where a trade's gas
    moved a gas above what the cycle's last estimate taught, the guess was one low and the
    guess plus one is anvil's own figure: a clean-clone run confirmed 2 of them.)"""
    chain = open_chain(recording, log_path=tmp_path / "anvil.log")
    assert isinstance(chain, AnvilChain)
    try:
        guessed = run(recording, BacktestStrategy(), chain=chain)
        assert chain.gas_confirmed > 0
        chain.reset()
        chain.guess_gas = False
        searched = run(recording, BacktestStrategy(), chain=chain)
        chain.reset()
        chain.guess_gas = True
        confirmed, asked = chain.gas_confirmed, chain.gas_asked
        guess = AnvilChain._gas_guess
        monkeypatch.setattr(AnvilChain, "_gas_guess", lambda self, trace, key: guess(self, trace, key) + 1)
        missed = run(recording, BacktestStrategy(), chain=chain)
    finally:
        chain.close()
    assert chain.gas_confirmed - confirmed < chain.gas_asked - asked  # most asked anvil's search

    def fills(result: object) -> list[tuple[int, str, int, object]]:
        return [(r.block_number, r.path_id, r.realised_profit, r.extra.get("gas_limit"))
                for r in result.executions if r.status == "simulated"]  # type: ignore[attr-defined]

    assert len(fills(searched)) >= 5
    assert fills(guessed) == fills(searched) == fills(missed)


def test_a_recording_without_a_dump_replays_by_the_math(recording: Recording, tmp_path: Path) -> None:
    bare = Recording(recording.path, recording.version, {**recording.meta, "state_dump": None}, recording.frames)
    assert open_chain(bare) is None
    missing = Recording(recording.path, recording.version,
                        {**recording.meta, "state_dump": {"file": "gone.anvil-state.gz"}}, recording.frames)
    with pytest.raises(ChainError, match="state dump cannot be read"):
        open_chain(missing)


def test_a_changed_v3_tick_is_written_where_the_pool_reads_it(recording: Recording, tmp_path: Path) -> None:
    """A mint or burn (the recorded ticks change): the tick's liquidityNet and its bitmap bit,
    read back through the genuine pool's own ``ticks`` and ``tickBitmap``."""
    state = next(s for b in recording.blocks() for s in b.delta.states if isinstance(s, V3PoolState))
    chain = open_chain(recording, log_path=tmp_path / "anvil.log")
    assert chain is not None
    far = (state.tick // state.tick_spacing - 1000) * state.tick_spacing  # below every devnet range
    compressed = far // state.tick_spacing

    def read() -> tuple[int, bool]:
        """The pool's own view, through the state overrides a simulation through it carries."""
        def call(data: str) -> str:
            (eth_call, _) = chain.simulation({"to": state.address, "data": data}, [state.address])
            return str(chain.rpc.batch([eth_call])[0])

        info = bytes.fromhex(call("0x" + selector("ticks(int24)").hex() + int_arg(far).hex())[2:])
        bitmap = call("0x" + selector("tickBitmap(int16)").hex() + int_arg(compressed >> 8).hex())
        return int_word(info, 1), bool(int(bitmap, 16) >> (compressed % 256) & 1)

    try:
        chain.write([state])
        assert read() == (0, False)
        chain.write([dataclasses.replace(state, ticks=tuple(sorted((*state.ticks, (far, -7 * 10**18)))))])
        assert read() == (-7 * 10**18, True)
        chain.write([state])
        assert read() == (0, False)
    finally:
        chain.close()


def test_a_fill_the_anvil_does_not_confirm_is_replayed_waiting_for_it(
    recording: Recording, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Answered ahead with a gas estimate below the anvil's (factor 0): the verification
    refuses every trade, and the replay is run again, waiting for each answer."""
    chain = open_chain(recording, log_path=tmp_path / "anvil.log")
    assert chain is not None
    try:
        waiting = run(recording, BacktestStrategy(), chain=chain, ahead=False)
        chain.reset()
        monkeypatch.setattr("arbbot.replay.backtest.AHEAD_GAS_FACTOR", 0)
        replayed = run(recording, BacktestStrategy(), chain=chain)
    finally:
        chain.close()
    assert "replaying again, waiting for each fill" in caplog.text
    traded = [r for r in replayed.executions if r.status == "simulated"]
    assert len(traded) >= 5
    assert executed_cycles(replayed) == executed_cycles(waiting)
    assert [r.extra["gas_limit"] for r in traded] == [r.extra["gas_limit"] for r in waiting.executions
                                                      if r.status == "simulated"]
