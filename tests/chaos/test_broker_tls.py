"""Every broker connection of the fleet takes the TLS options of ``Settings.broker_ssl``
(``ARBBOT_BROKER_TLS_CA_FILE`` with an ``amqps://`` URL): Celery's, and the web's and the
command line's own kombu connections (``/healthz``, the console's queue depths,
``arbbot deadletters``). On a private RabbitMQ node with a TLS listener whose certificate a
private CA signed (``infrastructure/rabbitmq/conf.d-tls`` is the same listener): with the CA
file each one connects; without it (the system's CAs) the certificate is refused.
Starting a node takes 10-30 s here, so this runs with ``make chaos``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
from kombu import Connection

from arbbot.config import get_settings
from arbbot.devnet.anvil import free_port
from tests.chaos.services import PrivateRabbit
from workers import queues
from workers.deadletters import list_dead_letters

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(not os.environ.get("ARBBOT_CHAOS"), reason="the long chaos cases run with `make chaos`"),
]


def _certificates(d: Path) -> None:
    """A CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=arbbot test CA")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=localhost")
    (d / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "tls.crt", "-days", "2", "-extfile", "san.ext")
    for name in ("ca.crt", "tls.crt", "tls.key"):
        (d / name).chmod(0o644)


@pytest.fixture(scope="module")
def tls_broker() -> Iterator[dict[str, Any]]:
    tls_port = free_port()
    conf = "\n".join([
        f"listeners.ssl.default = {tls_port}",
        "ssl_options.cacertfile = @DIR@/tls/ca.crt",
        "ssl_options.certfile = @DIR@/tls/tls.crt",
        "ssl_options.keyfile = @DIR@/tls/tls.key",
        "ssl_options.versions.1 = tlsv1.3",
        "ssl_options.versions.2 = tlsv1.2",
        "ssl_options.verify = verify_none",
        "ssl_options.fail_if_no_peer_cert = false",
        "",
    ])
    def certificates(d: Path) -> None:
        (d / "tls").mkdir()
        _certificates(d / "tls")

    node = PrivateRabbit(conf, prepare=certificates)
    try:
        with Connection(node.url) as c:  # the plain listener: declare the fleet's queues as a worker would
            queues.declare_topology(c)
        yield {"url": f"amqps://guest:guest@localhost:{tls_port}//", "ca": node.dir / "tls" / "ca.crt"}
    finally:
        node.close()


def _settings(url: str, ca: Path | None) -> Any:
    return dataclasses.replace(get_settings(), broker_url=url, broker_tls_ca_file=ca)


def test_celery_and_kombu_connections_verify_the_broker_against_the_ca_file(tls_broker: dict[str, Any]) -> None:
    s = _settings(tls_broker["url"], tls_broker["ca"])
    assert isinstance(s.broker_ssl(), dict)
    with Connection(s.broker_url, ssl=s.broker_ssl(), connect_timeout=10) as c:
        c.ensure_connection(max_retries=1)
        assert c.connected and c.transport.client.ssl
    assert list_dead_letters(s.broker_url, 10, ssl=s.broker_ssl()) == []


def test_without_the_ca_file_the_private_certificate_is_refused(tls_broker: dict[str, Any]) -> None:
    s = _settings(tls_broker["url"], None)
    assert s.broker_ssl() is True  # amqps:// with the system's CAs
    with pytest.raises(Exception) as refused:
        with Connection(s.broker_url, ssl=s.broker_ssl(), connect_timeout=10) as c:
            c.ensure_connection(max_retries=1)
    assert "certificate" in str(refused.value).lower() or "ssl" in type(refused.value).__name__.lower()


@pytest.mark.django_db
def test_health_and_queue_depths_connect_over_tls(tls_broker: dict[str, Any], settings: Any) -> None:
    from webapp.core import health, selectors

    settings.ARBBOT = _settings(tls_broker["url"], tls_broker["ca"])
    assert health.check_dependencies()["broker"] == "ok"
    depths = {d["queue"]: d for d in selectors.queue_depths(timeout_s=10)}
    assert set(depths) == {*queues.STAGE_QUEUES, queues.DEAD_LETTER_QUEUE}
    assert all(d["messages"] == 0 for d in depths.values())
    settings.ARBBOT = _settings(tls_broker["url"], None)
    assert health.check_dependencies()["broker"].startswith("error")
    assert selectors.queue_depths(timeout_s=10) == []
