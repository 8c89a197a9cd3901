"""``manage.py arbbot backfill``, run as an operator runs it (a subprocess) against real
anvil, PostgreSQL and a node that refuses wide ``eth_getLogs`` ranges with geth's error:
interrupted by Ctrl-C and killed with SIGKILL part way, it resumes and ends with every pool
recorded exactly once and the cursor at the target; the scan stage then starts from there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from arbbot.chain.rpc import RpcClient
from arbbot.chain.scanner import Scanner, ScannerConfig
from arbbot.devnet.anvil import Anvil, start_anvil
from tests.chain.devchain import DevChain
from tests.chain.test_backfill import RangeLimitProxy, SpreadMarket, spread_market

ROOT = Path(__file__).resolve().parents[2]
CHAIN_ID = 31337
LIMIT = 40  # the node's eth_getLogs range limit, in blocks


def _env() -> dict[str, str]:
    from django.db import connection

    return {**os.environ, "ARBBOT_DATABASE_NAME": connection.settings_dict["NAME"], "PYTHONUNBUFFERED": "1"}


def arbbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "arbbot", *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=120)


#: The command as a terminal starts it: Ctrl-C (SIGINT) at its default. A process started
#: in the background by a non-interactive shell (``cmd &``) ignores SIGINT, and so does
#: everything it starts, this test run included; Python then never installs the handler
#: that turns Ctrl-C into KeyboardInterrupt. exec keeps the default set here.
_AS_IN_A_TERMINAL = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                     "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


def start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", _AS_IN_A_TERMINAL, "manage.py", "arbbot", *args], cwd=ROOT,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll a condition (a database row) until true, bounded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.002)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")


def cursors() -> dict[str, int]:
    from webapp.core import selectors

    return selectors.backfill_cursors(CHAIN_ID)


@pytest.fixture
def anvil() -> Iterator[Anvil]:
    a = start_anvil()
    yield a
    a.stop()


@pytest.fixture
def market(anvil: Anvil) -> tuple[DevChain, SpreadMarket]:
    dev = DevChain(RpcClient(anvil.url, timeout_s=30))
    return dev, spread_market(dev, n_tokens=7, gap=25, v3_pools=4)


@pytest.fixture
def proxy(anvil: Anvil) -> Iterator[RangeLimitProxy]:
    p = RangeLimitProxy(anvil.url, max_log_range=LIMIT, style="geth")
    yield p
    p.release()
    p.kill()


def configure(url: str, m: SpreadMarket) -> None:
    from webapp.core.models import Chain, Dex

    chain = Chain.objects.create(chain_id=CHAIN_ID, name="backfill-test", rpc_urls=url)
    Dex.objects.create(chain=chain, name="uni-v2", kind="v2", factory=m.v2, start_block=m.v2_start)
    Dex.objects.create(chain=chain, name="uni-v3", kind="v3", factory=m.v3, start_block=m.v3_start)


@pytest.mark.django_db(transaction=True)
def test_interrupted_and_killed_backfill_resumes_without_gap_or_repeat(
    market: tuple[DevChain, SpreadMarket], proxy: RangeLimitProxy
) -> None:
    from webapp.core import selectors
    from webapp.core.models import BackfillCursor, Pool

    dev, m = market
    configure(proxy.url, m)
    head = dev.rpc.block_number()
    target = head - 2  # the chain's confirmations
    span = target - m.v2_start + 1 + target - m.v3_start + 1

    # 1. Ctrl-C while the node is answering a chunk a third of the way in
    gate1 = m.v2_start + (target - m.v2_start) // 3
    proxy.hold(gate1)
    p = start("backfill", "--chain", str(CHAIN_ID), "--chunk", "100")
    assert proxy.held.wait(60), "the backfill never reached the held block"
    at_interrupt = cursors()
    assert proxy.held_from is not None and proxy.held_from >= gate1
    assert at_interrupt == {m.v2: proxy.held_from - 1}  # every chunk before the held one, none after
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "resume with the same command" in err and f"arbbot backfill --chain {CHAIN_ID}" in err
    assert cursors() == at_interrupt  # the chunk in flight was not recorded

    # 2. SIGKILL wherever it is once the cursor has moved on (mid-transaction or not); a
    # hold far ahead makes sure it cannot finish first
    proxy.release()
    proxy.hold(m.v3_start + (target - m.v3_start) // 2, address=m.v3)
    p = start("backfill", "--chain", str(CHAIN_ID), "--chunk", "100")
    wait_for(lambda: m.v3 in cursors(), "the cursor to reach the second DEX")
    p.send_signal(signal.SIGKILL)
    p.communicate(timeout=60)
    assert p.returncode == -signal.SIGKILL
    killed_at = cursors()
    assert killed_at[m.v2] == target and killed_at[m.v3] < target

    # 3. the same command again finishes the job
    proxy.release()
    r = arbbot("backfill", "--chain", str(CHAIN_ID), "--chunk", "100")
    assert r.returncode == 0, r.stderr
    assert f"resuming after block {killed_at[m.v3]:,}" in r.stdout
    assert f"backfilled through block {target:,}" in r.stdout
    assert "ETA" in r.stdout  # progress lines (stdout is not a terminal here)

    rows = list(Pool.objects.filter(chain__chain_id=CHAIN_ID).values_list("address", "kind", "dex__factory"))
    assert sorted(a for a, _, _ in rows) == sorted(m.pools)  # every pool, exactly once
    assert {a: k for a, k, _ in rows} == m.kinds
    assert all(f == (m.v2 if k == "v2" else m.v3) for _, k, f in rows)
    assert cursors() == {m.v2: target, m.v3: target}
    # each chunk's creation events were counted once over the three runs: nothing repeated
    assert sum(BackfillCursor.objects.values_list("pools_found", flat=True)) == len(m.pools)
    # the node refused wide ranges and the chunk shrank to what it accepts, covering all
    assert proxy.refused > 0
    assert all(hi - lo + 1 <= LIMIT for lo, hi in proxy.ranges)
    asked = {(f["address"], int(f["fromBlock"], 16), int(f["toBlock"], 16)) for f in proxy.filters}
    assert sum(hi - lo + 1 for _, lo, hi in asked) >= span

    # 4. nothing left: a no-op
    r = arbbot("backfill", "--chain", str(CHAIN_ID), "--to", str(target))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("up to date") == 2 and "0 pools found" in r.stdout

    # 5. the scan stage follows from the cursor: the backfilled pools come from the table, a
    # pool created after the target is discovered by the first poll
    late = dev.create_pair(m.v2, m.tokens[0], dev.deploy_token("Late", "LATE")).address
    mc = dev.deploy_multicall()
    cfg = ScannerConfig.from_dict({"chain_id": CHAIN_ID, "rpc_urls": [proxy.url], "multicall": mc,
                                   "read_tokens": False, "check_transfers": False,
                                   **selectors.discovery_config(CHAIN_ID)})
    assert {f.address: f.discovered_to for f in cfg.factories} == {m.v2: target, m.v3: target}
    (first,) = Scanner(cfg).poll()
    assert sorted(s.address for s in first.states) == sorted(m.pools + [late])


@pytest.mark.django_db(transaction=True)
def test_unknown_chain_and_bad_arguments_are_named(market: tuple[DevChain, SpreadMarket], anvil: Anvil) -> None:
    r = arbbot("backfill", "--chain", "424242")
    assert r.returncode == 2
    assert "unknown chain 424242" in r.stderr
    dev, m = market
    configure(anvil.url, m)
    head = dev.rpc.block_number()
    r = arbbot("backfill", "--chain", str(CHAIN_ID), "--to", str(head + 100))
    assert r.returncode == 2 and f"--to {head + 100} is beyond the node's head {head}" in r.stderr
    r = arbbot("backfill", "--chain", str(CHAIN_ID), "--chunk", "0")
    assert r.returncode == 2 and "--chunk" in r.stderr
    assert cursors() == {}
    # a cursor beyond the node's head (the chain was reset under the same id) is refused,
    # and --reset starts over from the start blocks
    from webapp.core import services
    from webapp.core.models import Pool

    services.backfill_chunk_record(CHAIN_ID, m.v2, m.v2_start, head + 50, [])
    r = arbbot("backfill", "--chain", str(CHAIN_ID))
    assert r.returncode == 1 and f"uni-v2 (block {head + 50:,})" in r.stderr and "--reset" in r.stderr
    r = arbbot("backfill", "--chain", str(CHAIN_ID), "--reset")
    assert r.returncode == 0, r.stderr
    assert cursors() == {m.v2: head - 2, m.v3: head - 2}
    assert Pool.objects.filter(chain__chain_id=CHAIN_ID).count() == len(m.pools)
    r = arbbot("backfill", "--help")
    assert r.returncode == 0 and "--chain" in r.stdout and "resumes" in r.stdout
