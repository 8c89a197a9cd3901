"""TLS to the broker and to Redis, as the deployment configures it, on private services
whose certificates a private CA signed (``make_certificates``; the listeners are those of
``infrastructure/rabbitmq/conf.d-tls`` and ``docker-compose.tls.yml``):

- every broker connection takes ``Settings.broker_ssl`` (``ARBBOT_BROKER_TLS_CA_FILE`` with an
  ``amqps://`` URL): Celery's, and the web's and the command line's own kombu connections
  (``/healthz``, the console's queue depths, ``arbbot deadletters``);
- every Redis client is made from ``ARBBOT_REDIS_URL`` (``rediss://...?ssl_ca_certs=<file>
  &ssl_cert_reqs=required``): the hot state, the kill switch, ``/healthz``.

With the CA each connects; without it (the system's CAs) the certificate is refused.
Starting the nodes takes 10-30 s here, so this runs with ``make chaos``."""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Iterator

import pytest
import redis
from kombu import Connection

from arbbot.config import get_settings
from arbbot.devnet.anvil import free_port
from tests.chaos.services import PrivateRabbit, PrivateRedis, make_certificates
from workers import queues
from workers.deadletters import list_dead_letters

pytestmark = [
    pytest.mark.chaos,
    pytest.mark.skipif(not os.environ.get("ARBBOT_CHAOS"), reason="the long chaos cases run with `make chaos`"),
]


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
    node = PrivateRabbit(conf, prepare=lambda d: make_certificates(d / "tls"))
    try:
        with Connection(node.url) as c:  # the plain listener: declare the fleet's queues as a worker would
            queues.declare_topology(c)
        yield {"url": f"amqps://guest:guest@localhost:{tls_port}//", "ca": node.dir / "tls" / "ca.crt"}
    finally:
        node.close()


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    certs = tmp_path_factory.mktemp("redis-tls")
    make_certificates(certs)
    tls_port = free_port()
    server = PrivateRedis([
        "--tls-port", str(tls_port), "--tls-cert-file", str(certs / "tls.crt"), "--tls-key-file",
        str(certs / "tls.key"), "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "no",
    ])
    try:
        yield {"url": f"rediss://localhost:{tls_port}/0", "ca": certs / "ca.crt"}
    finally:
        server.close()


def _settings(**kw: Any) -> Any:
    return dataclasses.replace(get_settings(), **kw)


def test_broker_connections_verify_the_broker_against_the_ca_file(tls_broker: dict[str, Any]) -> None:
    s = _settings(broker_url=tls_broker["url"], broker_tls_ca_file=tls_broker["ca"])
    assert isinstance(s.broker_ssl(), dict)
    with Connection(s.broker_url, ssl=s.broker_ssl(), connect_timeout=10) as c:
        c.ensure_connection(max_retries=1)
        assert c.connected
    assert list_dead_letters(s.broker_url, 10, ssl=s.broker_ssl()) == []


def test_without_the_ca_file_the_brokers_private_certificate_is_refused(tls_broker: dict[str, Any]) -> None:
    s = _settings(broker_url=tls_broker["url"], broker_tls_ca_file=None)
    assert s.broker_ssl() is True  # amqps:// with the system's CAs
    with pytest.raises(Exception, match="(?i)certificate|ssl"):
        with Connection(s.broker_url, ssl=s.broker_ssl(), connect_timeout=10) as c:
            c.ensure_connection(max_retries=1)


@pytest.mark.django_db
def test_health_queue_depths_and_kill_switch_over_tls(tls_broker: dict[str, Any], tls_redis: dict[str, Any],
                                                      settings: Any) -> None:
    from webapp.core import health, selectors, services

    good_redis = f"{tls_redis['url']}?ssl_ca_certs={tls_redis['ca']}&ssl_cert_reqs=required"
    settings.ARBBOT = _settings(broker_url=tls_broker["url"], broker_tls_ca_file=tls_broker["ca"],
                                redis_url=good_redis, redis_prefix=f"arbbot-tls-{os.getpid()}")
    checked = health.check_dependencies()
    assert (checked["broker"], checked["redis"]) == ("ok", "ok")
    depths = {d["queue"]: d for d in selectors.queue_depths(timeout_s=10)}
    assert set(depths) == {*queues.STAGE_QUEUES, queues.DEAD_LETTER_QUEUE}
    fleet = services.fleet_hotstate()
    fleet.set_kill_switch(True)
    assert fleet.kill_switch_engaged() is True
    assert selectors.kill_switch_state() is True

    settings.ARBBOT = _settings(broker_url=tls_broker["url"], broker_tls_ca_file=None,
                                redis_url=f"{tls_redis['url']}?ssl_cert_reqs=required")
    checked = health.check_dependencies()
    assert checked["broker"].startswith("error") and checked["redis"].startswith("error")
    assert selectors.queue_depths(timeout_s=10) == []
    with pytest.raises(redis.ConnectionError, match="(?i)certificate"):
        redis.Redis.from_url(settings.ARBBOT.redis_url).ping()
