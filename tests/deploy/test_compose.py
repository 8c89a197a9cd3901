"""docker-compose.yml is accepted by docker-compose (1.29, offline `config -q`) and wires the
whole system: every service the issue lists, health checks, start order on health, secrets
only from .env."""

from __future__ import annotations

import os

import yaml

from tests.deploy.support import LONGEST_TASK_S, REPO, run, tool

COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"


def compose(*args: str, env_file: str = str(ENV_EXAMPLE)):  # type: ignore[no-untyped-def]
    # A clean environment: only .env.example (or nothing) may supply ${...} values.
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return run([tool("docker-compose"), "--env-file", env_file, "-f", str(COMPOSE), *args], env=env, cwd=REPO)


def resolved() -> dict:
    result = compose("config")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_config_is_valid() -> None:
    result = compose("config", "-q")
    assert result.returncode == 0, f"docker-compose config -q rejected the file:\n{result.stderr}"


def test_secrets_have_no_defaults(tmp_path) -> None:  # type: ignore[no-untyped-def]
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = compose("config", "-q", env_file=str(empty))
    assert result.returncode != 0
    assert "in .env" in result.stderr  # the ${VAR:?set VAR in .env} message


def test_every_service_present() -> None:
    services = set(resolved()["services"])
    expected = {"rabbitmq", "redis", "timescaledb", "nginx", "prometheus", "grafana", "jaeger", "flower",
                "web", "beat", "migrate", "devnet", "devnet-init", "devnet-simulator", "redis-exporter"}
    assert expected <= services, expected - services


def test_healthchecks_and_start_order() -> None:
    services = resolved()["services"]
    one_shots = {"migrate", "devnet-init"}
    for name, svc in services.items():
        if name not in one_shots and name != "redis-exporter":
            assert "healthcheck" in svc, f"{name} has no healthcheck"
        for dep, cond in (svc.get("depends_on") or {}).items():
            expected = "service_completed_successfully" if dep in one_shots else "service_healthy"
            assert cond["condition"] == expected, f"{name} -> {dep}: {cond}"
    for name in [n for n in services if n.startswith("worker-")] + ["web", "beat"]:
        deps = services[name]["depends_on"]
        assert {"rabbitmq", "redis", "timescaledb", "migrate"} <= set(deps), name
    for name in [n for n in services if n.startswith("worker-")]:
        assert services[name]["healthcheck"]["test"][1:4] == ["python", "-m", "workers.health"]
        # warm shutdown: longer than the longest task
        grace = services[name]["stop_grace_period"]
        assert grace.endswith("s") and int(grace[:-1]) >= LONGEST_TASK_S, f"{name}: stop_grace_period {grace}"


def test_commands_follow_interfaces() -> None:
    services = resolved()["services"]
    assert services["web"]["command"][:4] == ["gunicorn", "webapp.wsgi:application", "--bind", "0.0.0.0:8000"]
    assert services["beat"]["command"][:4] == ["celery", "-A", "workers.celery_app", "beat"]
    assert services["flower"]["command"] == ["celery", "-A", "workers.celery_app", "flower", "--port=5555"]
    assert services["migrate"]["command"][:3] == ["python", "manage.py", "migrate"]
    init = " ".join(services["devnet-init"]["command"])
    assert "docker/devnet_init.py --rpc-url http://devnet:8545" in init and "manage.py devnet register" in init
    assert services["devnet-simulator"]["command"] == ["python", "manage.py", "devnet", "simulate"]
    assert (REPO / "docker/devnet_init.py").is_file()


def test_infrastructure_wiring() -> None:
    raw = yaml.safe_load(COMPOSE.read_text())["services"]
    prom = " ".join(raw["prometheus"]["command"])
    assert "--storage.tsdb.retention.time=30d" in prom
    rabbit_mounts = " ".join(raw["rabbitmq"]["volumes"])
    assert "definitions.json:/etc/rabbitmq/definitions.json" in rabbit_mounts
    assert "rabbitmq.conf:/etc/rabbitmq/rabbitmq.conf" in rabbit_mounts
    assert raw["rabbitmq"]["image"].endswith("-management")
    assert "COLLECTOR_OTLP_ENABLED" in raw["jaeger"]["environment"]
    assert "./infrastructure/grafana/provisioning:/etc/grafana/provisioning:ro" in raw["grafana"]["volumes"]
    assert "./infrastructure/timescaledb:/docker-entrypoint-initdb.d:ro" in raw["timescaledb"]["volumes"]
    assert raw["timescaledb"]["image"].startswith("timescale/timescaledb:")
    # every image is pinned to a tag, never latest
    for name, svc in raw.items():
        image = svc.get("image", "")
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}: {image}"


def test_env_example_covers_every_variable() -> None:
    import re

    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    defined = {line.split("=", 1)[0] for line in ENV_EXAMPLE.read_text().splitlines()
               if line and not line.startswith("#")}
    assert used <= defined, f"missing from .env.example: {sorted(used - defined)}"
