"""The Redis roles of ``infrastructure/redis/users.acl``, on a private ``redis-server``
started with the ACL file that ``render-acl.sh`` renders from it (the same script the
compose service runs): each role can do exactly its own work through ``HotState`` - the
scan role writes pool state, the execute role the nonce lock and open transactions, the
web role the kill switch - and nothing else; a viewer reads and writes nothing; nobody
without a password gets in."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis as redis_lib
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError

from arbbot.devnet.anvil import free_port
from arbbot.hotstate import Fleet, HotState
from arbbot.types import V2PoolState
from tests.e2e.fleet import wait_for

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "infrastructure" / "redis" / "users.acl"
RENDER = REPO / "infrastructure" / "redis" / "render-acl.sh"
ROLES = ("admin", "scan", "pipeline", "execute", "web", "viewer", "exporter")
CHAIN = 31337
P1, P2 = "0x" + "11" * 20, "0x" + "22" * 20
T0, T1 = "0x" + "aa" * 20, "0x" + "bb" * 20
H1, H2 = "0x" + "01" * 32, "0x" + "02" * 32
SIGNER = "0x" + "5e" * 20

Role = Callable[[str], HotState]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    if not shutil.which("redis-server"):
        pytest.skip("no redis-server here")
    d = tmp_path_factory.mktemp("redis-acl")
    passwords = {r: secrets.token_hex(16) for r in ROLES}
    env = {**os.environ, **{f"REDIS_PASSWORD_{r.upper()}": pw for r, pw in passwords.items()}}
    subprocess.run(["sh", str(RENDER), str(RULES), str(d / "users.acl")], env=env, check=True, timeout=30)
    assert (d / "users.acl").stat().st_mode & 0o077 == 0, "the rendered file holds passwords: owner-only"
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(d), "--aclfile", str(d / "users.acl")],
        stdout=open(d / "redis.log", "wb"), stderr=subprocess.STDOUT,
    )
    admin = redis_lib.Redis(port=port, username="admin", password=passwords["admin"], socket_connect_timeout=1)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"redis-server exited: {(d / 'redis.log').read_text()[-2000:]}")
        try:
            return bool(admin.ping())
        except redis_lib.ConnectionError:
            return False

    try:
        wait_for(up, 30, "the ACL redis to answer")
        yield {"port": port, "passwords": passwords, "admin": admin}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture()
def role(server: dict[str, Any]) -> Iterator[Role]:
    server["admin"].flushall()
    clients: list[redis_lib.Redis] = []

    def make(name: str) -> HotState:
        url = f"redis://{name}:{server['passwords'][name]}@127.0.0.1:{server['port']}/0"
        c = redis_lib.Redis.from_url(url)
        clients.append(c)
        return HotState(c, "arbbot", CHAIN)

    yield make
    for c in clients:
        c.close()


def pool(address: str, block: int) -> V2PoolState:
    return V2PoolState(address, T0, T1, 10**21, 2 * 10**21, 3000, block)


def test_the_scan_role_writes_pool_state_and_its_locks(role: Role) -> None:
    scan = role("scan")
    scan.put_pools([pool(P1, 7), pool(P2, 7)], 7, H1, cursor=(7, [(7, H1)]))
    scan.put_pools([pool(P1, 8)], 8, H2, cursor=(8, [(7, H1), (8, H2)]), orphaned=[H1])
    scan.delete_pools([P2])
    assert scan.claim_block(8, H2) and not scan.claim_block(8, H2)
    with scan.scanning(0.3) as got:  # renewed under this role while it runs (the lock's extend script)
        assert got
        time.sleep(0.8)
        assert scan.redis.pttl(scan.key("lock:scan")) > 0
        with scan.scanning(0.3) as again:
            assert not again
    lease = scan.follower_lock(5)
    assert lease.acquire() and lease.extend(5)
    lease.release()
    assert scan.head() == (8, H2) and scan.load_cursor() == (8, [(7, H1), (8, H2)])
    assert not scan.fleet.kill_switch_engaged()


def test_the_pipeline_role_reads_pool_state(role: Role) -> None:
    role("scan").put_pools([pool(P1, 7)], 7, H1)
    role("scan").put_pools([pool(P2, 8)], 8, H2)
    path = role("pipeline")
    assert path.snapshot() == ({P1: pool(P1, 7), P2: pool(P2, 8)}, (8, H2))
    assert path.changed_since(7, H1) == ({P2: pool(P2, 8)}, (8, H2), frozenset()), "the read-only script runs"
    assert path.excluded_tokens() == {} and not path.is_orphaned(H1)


def test_the_execute_role_holds_the_nonce_lock_and_its_transactions(role: Role) -> None:
    ex = role("execute")
    lock = ex.nonce_lock(SIGNER, wait_s=1)
    with lock:
        token = lock.local.token
        assert ex.nonce_take(SIGNER, token) is None, "nothing stored: resync first"
        ex.nonce_reset(SIGNER, token, 5)
        assert ex.nonce_take(SIGNER, token) == 5
        ex.nonce_sent(SIGNER, 5, "0x" + "ab" * 32, 21000)
        assert lock.extend(5)
    assert ex.nonce_peek(SIGNER) == (6, None)
    assert ex.open_txs(SIGNER) == {"0x" + "ab" * 32: (5, 21000)}
    ex.open_close(SIGNER, "0x" + "ab" * 32)
    ex.cooldown_pools([P1], 5, "reverted")
    ex.note_traded([P1], SIGNER, 5, "0x" + "ab" * 32)
    assert ex.cooling_pools([P1, P2]) == {P1: "reverted"} and P1 in ex.last_trades([P1])
    with ex.journal_lock(0.3) as got:  # renewed under this role while it runs
        assert got
        time.sleep(0.8)
        with ex.journal_lock(0.3) as again:
            assert not again
    assert not ex.fleet.kill_switch_engaged()


def test_the_web_role_engages_the_kill_switch_and_clears_token_flags(role: Role) -> None:
    web = role("web")
    role("admin").redis.hset(web.key("tokens"), T0, '{"excluded_reason": "fee on transfer"}')
    web.fleet.set_kill_switch(True)
    assert role("execute").fleet.kill_switch_engaged(), "the workers see it"
    web.fleet.set_kill_switch(False)
    assert not role("viewer").fleet.kill_switch_engaged()
    web.clear_token_flag(T0)
    assert web.excluded_tokens() == {}


def test_a_viewer_cannot_write_the_kill_switch(role: Role) -> None:
    role("web").fleet.set_kill_switch(True)
    viewer = role("viewer")
    with pytest.raises(NoPermissionError):
        viewer.fleet.set_kill_switch(False)
    assert viewer.fleet.kill_switch_engaged(), "still engaged"
    with pytest.raises(NoPermissionError):
        Fleet(viewer.redis, "arbbot").redis.delete("arbbot:kill_switch")


@pytest.mark.parametrize("name", ["scan", "pipeline", "execute"])
def test_every_worker_role_counts_its_deliveries(role: Role, name: str) -> None:
    """The crash-loop guard (workers/deadletters.py) runs in every stage worker."""
    fleet = role(name).fleet
    assert fleet.delivery_started("task-1") == 1 and fleet.delivery_started("task-1") == 2
    assert fleet.deliveries_unfinished("task-1") == 2
    fleet.delivery_finished("task-1")
    assert fleet.deliveries_unfinished("task-1") == 0


# (role, what it must not do): the control plane is written by its owner only.
FORBIDDEN: list[tuple[str, str, Callable[[HotState], Any]]] = [
    ("viewer", "write pool state", lambda h: h.put_pools([pool(P1, 9)], 9, H1)),
    ("viewer", "take the nonce lock", lambda h: h.nonce_lock(SIGNER, wait_s=0).acquire()),
    ("pipeline", "write pool state", lambda h: h.put_pools([pool(P1, 9)], 9, H1)),
    ("pipeline", "engage the kill switch", lambda h: h.fleet.set_kill_switch(True)),
    ("pipeline", "claim a block", lambda h: h.claim_block(9, H1)),
    ("pipeline", "write outside its delivery counts", lambda h: h.redis.set("arbbot:deliveriesX", 1)),
    ("viewer", "count a delivery", lambda h: h.fleet.delivery_started("task-1")),
    ("scan", "engage the kill switch", lambda h: h.fleet.set_kill_switch(True)),
    ("scan", "release the kill switch", lambda h: h.fleet.set_kill_switch(False)),
    ("scan", "take the nonce lock", lambda h: h.nonce_lock(SIGNER, wait_s=0).acquire()),
    ("scan", "move a nonce", lambda h: h.redis.set(h.key(f"nonce_next:{SIGNER}"), 0)),
    ("execute", "release the kill switch", lambda h: h.fleet.set_kill_switch(False)),
    ("execute", "write pool state", lambda h: h.put_pools([pool(P1, 9)], 9, H1)),
    ("execute", "mark a block orphaned", lambda h: h.redis.sadd(h.key("orphaned"), H1)),
    ("web", "write pool state", lambda h: h.put_pools([pool(P1, 9)], 9, H1)),
    ("web", "take the nonce lock", lambda h: h.nonce_lock(SIGNER, wait_s=0).acquire()),
    ("exporter", "engage the kill switch", lambda h: h.fleet.set_kill_switch(True)),
    *[(r, "flush everything", lambda h: h.redis.flushall()) for r in ("scan", "pipeline", "execute", "web", "viewer")],
    *[(r, "change the configuration", lambda h: h.redis.config_set("appendonly", "no"))
      for r in ("scan", "execute", "web", "exporter")],
    *[(r, "list every key", lambda h: h.redis.keys("*")) for r in ("scan", "execute", "web", "viewer")],
]


@pytest.mark.parametrize(("name", "what", "action"), FORBIDDEN, ids=[f"{r}-{w}" for r, w, _ in FORBIDDEN])
def test_a_role_cannot_do_what_is_not_its_own(role: Role, name: str, what: str, action: Callable[[HotState], Any]
                                               ) -> None:
    with pytest.raises(NoPermissionError):
        action(role(name))


def test_nobody_gets_in_without_a_password(server: dict[str, Any]) -> None:
    anonymous = redis_lib.Redis(port=server["port"])
    with pytest.raises((AuthenticationError, ResponseError)):
        anonymous.set("arbbot:kill_switch", "1")
    wrong = redis_lib.Redis(port=server["port"], username="web", password="not-it")
    with pytest.raises(AuthenticationError):
        wrong.ping()
    assert not server["admin"].exists("arbbot:kill_switch")


def test_a_user_without_a_password_cannot_log_in(tmp_path: Path) -> None:
    out = tmp_path / "users.acl"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_PASSWORD_")}
    env["REDIS_SECRETS_DIR"] = str(tmp_path / "none")
    subprocess.run(["sh", str(RENDER), "--prefix", "desk", str(RULES), str(out)], env=env, check=True, timeout=30)
    lines = out.read_text().splitlines()
    assert lines and all(">" not in line for line in lines), "no password rendered"
    assert " ~desk:kill_switch" in out.read_text() and "~arbbot:" not in out.read_text()
