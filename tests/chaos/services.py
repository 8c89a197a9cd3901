"""Private instances of the fleet's services, started and stopped by the chaos suite alone:
a PostgreSQL cluster made with ``initdb``, a ``redis-server`` with the deployment's own
``infrastructure/redis/redis.conf``, a RabbitMQ node with its own node name, ports, data
directory and Erlang cookie. Each on free ports of 127.0.0.1, in a directory of its own;
faults (a crash, a restart) are injected into these only, never into the machine's shared
services that the rest of the test run uses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

import psycopg
import redis as redis_lib

from arbbot.devnet.anvil import free_port
from tests.e2e.fleet import wait_for

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def _private_dir(name: str, owner: str | None = None) -> Path:
    d = Path(tempfile.mkdtemp(prefix=f"arbbot-chaos-{name}-"))
    d.chmod(0o755)
    if owner:
        shutil.chown(d, owner, owner)
    return d


class PrivatePostgres:
    """A PostgreSQL cluster of its own (trust auth, fsync on: a crash is a real crash)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = _private_dir("pg", "postgres" if os.geteuid() == 0 else None)
        self.data = self.dir / "data"
        self._as_owner([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])
        self.start()
        with psycopg.connect(self.dsn("postgres"), autocommit=True) as c:
            c.execute("CREATE DATABASE arbbot")

    def _as_owner(self, cmd: list[str]) -> None:
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    def dsn(self, db: str = "arbbot") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        self._as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "pg.log"), "-w", "-t", "60",
                        "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"])

    def stop(self, mode: str = "fast") -> None:
        self._as_owner([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def crash(self) -> None:
        """Stop without a checkpoint (``immediate``: recovery replays the WAL at start)."""
        self.stop("immediate")

    def close(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def make_certificates(d: Path) -> None:
    """In ``d``: a CA (``ca.crt``) and a server certificate for localhost and 127.0.0.1
    signed by it (``tls.crt``, ``tls.key``), for the TLS listeners of the private services."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    d.mkdir(parents=True, exist_ok=True)
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=arbbot test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=localhost")
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "tls.crt", "-days", "2", "-extfile", "san.ext")
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (d / name).chmod(0o644)


class PrivateRedis:
    """``redis-server`` with the deployment's configuration (AOF, fsync every second), on
    its own port and directory."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        """``extra_args``: more of ``redis-server``'s command line (a TLS port, say)."""
        self.port = free_port()
        self.dir = _private_dir("redis")
        self.extra_args = list(extra_args or [])
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        # the deployment's file, but its directory (redis refuses a `dir` that does not exist
        # before the command line can override it)
        conf = self.dir / "redis.conf"
        conf.write_text("\n".join(line for line in (ROOT / "infrastructure/redis/redis.conf").read_text().splitlines()
                                  if not line.startswith("dir ")) + f"\ndir {self.dir}\n")
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", str(conf),
             "--port", str(self.port), "--bind", "127.0.0.1", "--maxmemory", "256mb", *self.extra_args],
            stdout=open(self.dir / "redis.log", "ab"), stderr=subprocess.STDOUT,
        )
        client = redis_lib.Redis(port=self.port, socket_connect_timeout=1)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis_lib.RedisError:
                return False

        wait_for(up, 30, "the private redis to answer")

    def crash(self) -> None:
        """SIGKILL: what was not yet fsynced (at most about a second) is lost."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.crash()
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRabbit:
    """A RabbitMQ node of its own: node name, AMQP and distribution ports, data and log
    directories, no plugins, and its own Erlang cookie (``HOME``), so neither it nor its
    ``rabbitmqctl`` can touch the machine's node."""

    def __init__(self, conf: str = "", prepare: Callable[[Path], None] | None = None) -> None:
        """``conf``: lines of ``rabbitmq.conf`` (a TLS listener, say), ``@DIR@`` standing for
        the node's directory; ``prepare``: called with that directory before the server starts
        (to put the files ``conf`` names there)."""
        self.port, self.dist_port = free_port(), free_port()
        self.dir = _private_dir("rabbit")
        self.node = f"chaos{self.port}@localhost"
        (self.dir / "enabled_plugins").write_text("[].\n")
        (self.dir / "rabbitmq.conf").write_text(conf.replace("@DIR@", str(self.dir)))
        if prepare is not None:
            prepare(self.dir)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
            "HOME": str(self.dir),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbit.pid"),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _ctl(self, *args: str, timeout: float = 90) -> None:
        subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.node, *args], env=self.env, check=True,
                       capture_output=True, timeout=timeout)

    def start(self) -> None:
        self.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self.env,
                                     stdout=open(self.dir / "server.log", "ab"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            try:
                self._ctl("await_startup", "--timeout", "60")
                return
            except subprocess.CalledProcessError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private RabbitMQ did not start: {(self.dir / 'server.log').read_text()[-2000:]}")
                time.sleep(0.5)

    def stop(self) -> None:
        self._ctl("stop")
        assert self.proc is not None
        self.proc.wait(timeout=60)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.stop()
            except Exception:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
