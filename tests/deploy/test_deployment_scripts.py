"""deployment/*.sh are valid bash and their dry runs work offline: deploy.sh renders the
right overlay (or the Helm chart with the env's values) for every ENV x REGION, and
build/push print one image per role. The Helm values files pass values.schema.json."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.support import REPO, by_kind, check_workloads, run, validation_errors

SCRIPTS = sorted((REPO / "deployment").glob("*.sh"))
ENVS = ("dev", "staging", "production")
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-1")


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_parse_and_are_executable(script) -> None:  # type: ignore[no-untyped-def]
    result = run(["bash", "-n", str(script)])
    assert result.returncode == 0, result.stderr
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"


@pytest.mark.parametrize("env", ENVS)
@pytest.mark.parametrize("region", REGIONS)
def test_deploy_dry_run_kustomize(env: str, region: str) -> None:
    result = run([str(REPO / "deployment/deploy.sh"), env, region, "--dry-run"])
    assert result.returncode == 0, result.stderr
    objs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert by_kind(objs, "ScaledObject") and by_kind(objs, "Deployment")
    if env == "production":
        (ing,) = by_kind(objs, "Ingress")
        assert ing["spec"]["rules"][0]["host"] == f"{region}.arbbot.example.com"
    assert f"arbbot-{env}-{region}" in result.stderr


@pytest.mark.parametrize("env", ENVS)
def test_deploy_dry_run_helm(env: str) -> None:
    result = run([str(REPO / "deployment/deploy.sh"), env, "eu-west-1", "--dry-run", "--tool", "helm"])
    assert result.returncode == 0, result.stderr
    objs = [d for d in yaml.safe_load_all(result.stdout) if d]
    errors = [e for o in objs for e in validation_errors(o)]
    assert not errors, "\n".join(errors)
    values = yaml.safe_load((REPO / f"deployment/helm-values/{env}.yaml").read_text())
    problems = check_workloads(objs, keda=values.get("keda", {}).get("enabled", False))
    assert not problems, "\n".join(problems)


def test_deploy_rejects_bad_arguments() -> None:
    assert run([str(REPO / "deployment/deploy.sh"), "prod", "us-east-1", "--dry-run"]).returncode == 2
    assert run([str(REPO / "deployment/deploy.sh"), "dev", "mars-1", "--dry-run"]).returncode == 2
    assert run([str(REPO / "deployment/deploy.sh"), "dev"]).returncode == 2


@pytest.mark.parametrize("script", ["build-all.sh", "push-all.sh"])
def test_build_and_push_dry_run(script: str) -> None:
    result = run([str(REPO / "deployment" / script), "--dry-run", "--tag", "1.2.3", "--registry", "reg.example/x"])
    assert result.returncode == 0, result.stderr
    for role in ("web", "worker", "beat", "flower", "devnet"):
        assert f"reg.example/x/arbbot-{role}:1.2.3" in result.stderr
