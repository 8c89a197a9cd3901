"""Each process gets the environment its command needs, and the signing key only where it
signs: rendered from every Kustomize overlay, the Helm chart (defaults, each toggle that
touches secrets, each ``deployment/helm-values`` file) and ``docker-compose.yml``.

For every container (Deployment, Job) or compose service, its environment is resolved the
way the kubelet or compose would: explicit ``env``, plus the keys of each ``envFrom``
ConfigMap/Secret this rendering contains (a Secret created out of band has unknown keys);
its files are its volume mounts. Then:

- a signer variable (``arbbot.config.SIGNER_VARS``), or a mount of the Secret/volume that
  holds the key, appears only in a process that signs: a worker consuming the ``execute``
  queue, or the devnet's one-shot deployer (it generates or is given the devnet key);
- every worker consuming ``execute`` has a signer source;
- the cross-chain inventory wallet's key (``arbbot.config.XCHAIN_KEY_VARS``, or a mount of
  the Secret/volume holding it) appears only in a worker consuming ``bridge``, which has it
  wherever the rendering turns cross-chain on (Kustomize, compose, Helm's
  ``xchain.enabled``) and nothing of it otherwise; no process has both keys;
- every ``*_FILE`` variable, and every ``/run/secrets`` path in a command, lies under a
  mount of that container (a file the app writes, the heartbeat, under a writable one when
  the root file system is read-only); a file in a rendered Secret is one of its keys.

Before this test, ``ARBBOT_SIGNER_KEY_FILE`` sat in the shared ConfigMap (and the shared
compose environment), so every pod without the mount failed at start with a ConfigError.
"""

from __future__ import annotations

import copy
import os
import posixpath
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pytest
import yaml

from arbbot.config import SIGNER_VARS, XCHAIN_KEY_VARS
from tests.deploy.support import (
    REPO,
    by_kind,
    helm_objects,
    kustomize,
    overlays,
    run,
    tool,
)

#: Files the app writes rather than reads: they need a writable place, not a mounted secret.
WRITTEN_FILES = {"ARBBOT_HEARTBEAT_FILE"}
SECRET_DIRS = ("/run/secrets/", "/var/run/secrets/")
SIGNING_QUEUE = "execute"
XCHAIN_QUEUE = "bridge"

HELM_VALUES: dict[str, dict[str, Any]] = {
    "defaults": {},
    "devnet": {
        "devnet": {"enabled": True},
        "secrets": {"create": True, "values": {"DJANGO_SECRET_KEY": "x"}},
    },
    "keystore": {"signer": {"keystore": {"enabled": True}}},
    "xchain": {"xchain": {"enabled": True}},
    "xchain-devnet": {
        "xchain": {"enabled": True},
        "devnet": {"enabled": True},
        "secrets": {"create": True, "values": {"DJANGO_SECRET_KEY": "x"}},
    },
    "keda": {"keda": {"enabled": True}},
    **{
        f"helm-values/{p.stem}": yaml.safe_load(p.read_text())
        for p in sorted((REPO / "deployment" / "helm-values").glob("*.yaml"))
    },
}


@dataclass
class Mount:
    path: str
    source: str  # "secret:<name>", "configMap:<name>", "emptyDir", "volume:<name>", "bind:<host path>"
    read_only: bool
    keys: frozenset[str] | None = (
        None  # the files a rendered Secret/ConfigMap projects here
    )


@dataclass
class Proc:
    """One container or compose service: its command, environment and mounts."""

    where: str
    command: list[str]
    env: dict[str, str | None] = field(
        default_factory=dict
    )  # None: valueFrom, not a literal
    env_from_secrets: set[str] = field(
        default_factory=set
    )  # every Secret it reads as env
    mounts: list[Mount] = field(default_factory=list)
    read_only_root: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.command)

    def queues(self) -> set[str]:
        c = self.command
        if "worker" in c and "-Q" in c:
            return set(c[c.index("-Q") + 1].split(","))
        return set()

    def signs(self) -> bool:
        """Runs the execute queue, or deploys the devnet with the bot's key."""
        return SIGNING_QUEUE in self.queues() or "devnet_init.py" in self.text

    def signs_xchain(self) -> bool:
        """Runs the bridge queue: the cross-chain legs, signed with the inventory wallet's key."""
        return XCHAIN_QUEUE in self.queues()

    def mount_of(self, path: str) -> Mount | None:
        """The mount a path lies under (the deepest one), or None."""
        path = posixpath.normpath(path)
        best = None
        for m in self.mounts:
            root = posixpath.normpath(m.path)
            if (path == root or path.startswith(root.rstrip("/") + "/")) and (
                best is None or len(root) > len(best.path)
            ):
                best = m
        return best


# --- reading the renderings -----------------------------------------------------------


def _data_keys(obj: dict[str, Any]) -> frozenset[str]:
    return frozenset({*(obj.get("data") or {}), *(obj.get("stringData") or {})})


def k8s_procs(objs: Iterable[dict[str, Any]], label: str) -> list[Proc]:
    objs = list(objs)
    configmaps = {o["metadata"]["name"]: o for o in by_kind(objs, "ConfigMap")}
    secrets = {o["metadata"]["name"]: o for o in by_kind(objs, "Secret")}
    procs = []
    for obj in [
        o
        for o in objs
        if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]:
        spec = obj["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec.get("initContainers", []) + spec["containers"]:
            p = Proc(
                where=f"{label}: {obj['kind']}/{obj['metadata']['name']} container {c['name']}",
                command=[str(a) for a in c.get("command", []) + c.get("args", [])],
                read_only_root=bool(
                    c.get("securityContext", {}).get("readOnlyRootFilesystem")
                ),
            )
            for ref in c.get("envFrom", []):
                if "configMapRef" in ref:
                    cm = configmaps.get(ref["configMapRef"]["name"])
                    for k, v in ((cm or {}).get("data") or {}).items():
                        p.env[ref.get("prefix", "") + k] = str(v)
                if "secretRef" in ref:
                    name = ref["secretRef"]["name"]
                    p.env_from_secrets.add(name)
                    for k in _data_keys(secrets.get(name, {})):
                        p.env[ref.get("prefix", "") + k] = None
            for e in c.get("env", []):
                p.env[e["name"]] = str(e["value"]) if "value" in e else None
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    p.env_from_secrets.add(ref["name"])
            for vm in c.get("volumeMounts", []):
                vol = volumes.get(vm["name"], {})
                keys = None
                if "secret" in vol:
                    source = f"secret:{vol['secret']['secretName']}"
                    if vol["secret"].get("items"):
                        keys = frozenset(i["path"] for i in vol["secret"]["items"])
                    elif vol["secret"]["secretName"] in secrets:
                        keys = _data_keys(secrets[vol["secret"]["secretName"]])
                elif "configMap" in vol:
                    source = f"configMap:{vol['configMap']['name']}"
                elif "emptyDir" in vol:
                    source = "emptyDir"
                else:
                    source = f"volume:{vm['name']}"
                if vm.get("subPath") and keys is not None:
                    keys = frozenset({""}) if vm["subPath"] in keys else frozenset()
                p.mounts.append(
                    Mount(vm["mountPath"], source, bool(vm.get("readOnly")), keys)
                )
            procs.append(p)
    return procs


def compose_config() -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    result = run(
        [
            tool("docker-compose"),
            "--env-file",
            str(REPO / ".env.example"),
            "-f",
            str(REPO / "docker-compose.yml"),
            "config",
        ],
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


def _compose_mount(v: Any, named: set[str]) -> Mount:
    if isinstance(v, dict):
        source, target, ro = (
            str(v.get("source", "")),
            str(v["target"]),
            bool(v.get("read_only")),
        )
    else:
        parts = str(v).split(":")
        if len(parts) == 1:
            source, target, ro = "", parts[0], False
        else:
            source, target = parts[0], parts[1]
            ro = len(parts) > 2 and "ro" in parts[2].split(",")
    kind = "volume" if source in named else ("bind" if source else "emptyDir")
    return Mount(target, f"{kind}:{source}" if source else kind, ro)


def compose_procs(config: dict[str, Any]) -> list[Proc]:
    named = set(config.get("volumes") or {})
    procs = []
    for name, svc in config["services"].items():
        command = svc.get("command") or []
        environment = svc.get("environment") or {}
        if isinstance(environment, list):
            environment = dict(
                e.split("=", 1) if "=" in e else (e, None) for e in environment
            )
        p = Proc(
            where=f"docker-compose.yml: service {name}",
            command=[
                str(a)
                for a in (command.split() if isinstance(command, str) else command)
            ],
            env={k: (None if v is None else str(v)) for k, v in environment.items()},
            mounts=[_compose_mount(v, named) for v in svc.get("volumes") or []],
            read_only_root=bool(svc.get("read_only")),
        )
        # compose `secrets:` are files under /run/secrets/<name>
        for s in svc.get("secrets") or []:
            target = s if isinstance(s, str) else s.get("target", s["source"])
            path = target if str(target).startswith("/") else f"/run/secrets/{target}"
            p.mounts.append(
                Mount(
                    path,
                    f"secret:{s if isinstance(s, str) else s['source']}",
                    True,
                    frozenset({""}),
                )
            )
        procs.append(p)
    return procs


# --- the rules --------------------------------------------------------------------------


def _file_vars(p: Proc) -> dict[str, str]:
    return {k: v for k, v in p.env.items() if k.endswith("_FILE") and v}


def _key_paths(p: Proc) -> list[str]:
    """Where this process would read the signing key: the files its signer variables name,
    the key file a devnet deployer is handed, and the devnet fallback (config.py reads
    ``$ARBBOT_DEVNET_DIR/signer.key`` when no signer variable is set)."""
    paths = [
        v for k, v in p.env.items() if k in SIGNER_VARS and k.endswith("_FILE") and v
    ]
    words = p.text.replace("=", " ").split()  # also inside an `sh -c "..."` string
    paths += [
        words[i + 1] for i, w in enumerate(words[:-1]) if w == "--signer-key-file"
    ]
    if p.env.get("ARBBOT_DEVNET_DIR"):
        paths.append(posixpath.join(str(p.env["ARBBOT_DEVNET_DIR"]), "signer.key"))
    return paths


def _sources(
    procs: list[Proc], reads: Callable[[Proc], bool], paths: Callable[[Proc], list[str]],
    named: Callable[[str], bool],
) -> set[str]:
    """Mount sources (Secrets, named volumes) that hold a key: those a process that ``reads``
    it takes it from (at its ``paths``), and any Secret whose name is ``named`` as the key's."""
    sources = set()
    for p in procs:
        if not reads(p):
            continue
        for path in paths(p):
            m = p.mount_of(path)
            if m is not None and m.source != "emptyDir":
                sources.add(m.source)
    for p in procs:
        for m in p.mounts:
            if m.source.startswith("secret:") and named(m.source.split(":", 1)[1]):
                sources.add(m.source)
        sources |= {f"secret:{s}" for s in p.env_from_secrets if named(s)}
    return sources


def key_sources(procs: list[Proc]) -> set[str]:
    """Mount sources that hold the signing key: where a signing process reads it, and any
    Secret whose name says it is the signer's."""
    return _sources(procs, Proc.signs, _key_paths, lambda name: name.endswith("signer"))


def _xchain_key_paths(p: Proc) -> list[str]:
    """Where this process would read the cross-chain key: the file ``ARBBOT_XCHAIN_KEY_FILE``
    names, and the devnet fallback (``$ARBBOT_DEVNET_DIR/xchain.key``)."""
    paths = [
        v
        for k, v in p.env.items()
        if k in XCHAIN_KEY_VARS and k.endswith("_FILE") and v
    ]
    if p.env.get("ARBBOT_DEVNET_DIR"):
        paths.append(posixpath.join(str(p.env["ARBBOT_DEVNET_DIR"]), "xchain.key"))
    return paths


def xchain_key_sources(procs: list[Proc]) -> set[str]:
    """Mount sources holding the cross-chain key: where a bridge worker reads it, and any
    Secret whose name says it is the cross-chain key's."""
    return _sources(procs, Proc.signs_xchain, _xchain_key_paths, lambda name: "xchain" in name)


def holds(p: Proc, vars_: Iterable[str], sources: set[str]) -> bool:
    """The process has one of these variables, or mounts or reads one of these sources."""
    return bool(
        set(p.env) & set(vars_)
        or any(m.source in sources for m in p.mounts)
        or any(f"secret:{s}" in sources for s in p.env_from_secrets)
    )


def _unsigned_key_problems(p: Proc, vars_: Iterable[str], holders: set[str], key: str, does: str) -> list[str]:
    """How ``p``, which does not ``does``, still gets ``key``: its variables, a mount of one
    of its ``holders`` or that Secret read as env."""
    problems = [f"{p.where}: has {var} but does not {does} (command: {p.text!r})" for var in sorted(set(p.env) & set(vars_))]
    problems += [f"{p.where}: mounts {key} ({m.source} at {m.path}) but does not {does}"
                 for m in p.mounts if m.source in holders]
    problems += [f"{p.where}: reads {key}'s Secret {s} as env but does not {does}"
                 for s in p.env_from_secrets if f"secret:{s}" in holders]
    return problems


def env_problems(procs: list[Proc], xchain: bool | None = None) -> list[str]:
    """What is wrong; ``xchain``: whether every bridge worker must have the cross-chain key
    (True), must have nothing of it (False), or either (None)."""
    problems: list[str] = []
    holders = key_sources(procs)
    xchain_holders = xchain_key_sources(procs)
    for p in procs:
        signs = p.signs()
        if not signs:
            problems += _unsigned_key_problems(p, SIGNER_VARS, holders, "the signing key", "sign")
        if not p.signs_xchain():
            problems += _unsigned_key_problems(p, XCHAIN_KEY_VARS, xchain_holders, "the cross-chain key",
                                               "sign cross-chain legs")
        elif xchain and not p.env.get("ARBBOT_XCHAIN_KEY_FILE"):
            problems.append(
                f"{p.where}: consumes {XCHAIN_QUEUE} but has no ARBBOT_XCHAIN_KEY_FILE"
            )
        elif xchain is False and holds(p, XCHAIN_KEY_VARS, xchain_holders):
            problems.append(
                f"{p.where}: has the cross-chain key but cross-chain is off in this rendering"
            )
        if holds(p, SIGNER_VARS, holders) and holds(p, XCHAIN_KEY_VARS, xchain_holders):
            problems.append(f"{p.where}: has both the signing key and the cross-chain key")
        if SIGNING_QUEUE in p.queues():
            has_key = "ARBBOT_SIGNER_KEY" in p.env or "ARBBOT_SIGNER_KEY_FILE" in p.env
            has_keystore = "ARBBOT_SIGNER_KEYSTORE_FILE" in p.env and (
                "ARBBOT_SIGNER_KEYSTORE_PASSWORD" in p.env
                or "ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE" in p.env
            )
            if not (has_key or has_keystore):
                problems.append(
                    f"{p.where}: consumes {SIGNING_QUEUE} but has no signer variable (key or keystore)"
                )
        for var, path in sorted(_file_vars(p).items()):
            problems += _path_problems(p, var, path)
        for word in p.text.replace("=", " ").split():
            if word.startswith(SECRET_DIRS):
                problems += _path_problems(p, "the command", word)
    return problems


def _path_problems(p: Proc, what: str, path: str) -> list[str]:
    m = p.mount_of(path)
    if what in WRITTEN_FILES:
        if m is None and p.read_only_root:
            return [
                f"{p.where}: {what}={path} but the root file system is read-only and nothing is mounted there"
            ]
        if m is not None and m.read_only:
            return [f"{p.where}: {what}={path} is under the read-only mount {m.path}"]
        return []
    if m is None:
        return [
            f"{p.where}: {what} names {path}, which is not under any mount of this container"
        ]
    if m.keys is not None:
        rel = posixpath.relpath(posixpath.normpath(path), posixpath.normpath(m.path))
        if rel == ".":
            rel = ""
        if rel not in m.keys:
            return [
                f"{p.where}: {what} names {path}, but {m.source} mounted at {m.path} has only {sorted(m.keys)}"
            ]
    return []


# --- the renderings ---------------------------------------------------------------------

RENDERINGS = [
    "k8s/base",
    *overlays(),
    *(f"helm:{k}" for k in HELM_VALUES),
    "docker-compose.yml",
]


def xchain_on(rendering: str) -> bool:
    """Compose always gives the bridge worker the key's file (its default is an empty one:
    no key); Kustomize with the component k8s/components/xchain (the overlay
    production-xchain); Helm with ``xchain.enabled`` only."""
    if rendering.startswith("helm:"):
        return bool(HELM_VALUES[rendering[5:]].get("xchain", {}).get("enabled"))
    if rendering.startswith("k8s/"):
        return rendering.endswith("-xchain")
    return True


def procs_of(rendering: str) -> list[Proc]:
    if rendering == "docker-compose.yml":
        return compose_procs(compose_config())
    if rendering.startswith("helm:"):
        return k8s_procs(helm_objects(HELM_VALUES[rendering[5:]]), rendering)
    return k8s_procs(kustomize(rendering), rendering)


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_each_process_has_the_env_its_command_needs(rendering: str) -> None:
    procs = procs_of(rendering)
    assert [p for p in procs if SIGNING_QUEUE in p.queues()], (
        f"{rendering}: no worker consumes {SIGNING_QUEUE}"
    )
    problems = env_problems(procs, xchain=xchain_on(rendering))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "rendering", ["k8s/overlays/production", "helm:defaults", "docker-compose.yml"]
)
def test_only_the_execute_workers_hold_the_key(rendering: str) -> None:
    """Said positively: the processes that can read the key are exactly the signing ones."""
    procs = procs_of(rendering)
    holders = key_sources(procs)
    assert holders, f"{rendering}: found no Secret or volume holding the signing key"
    readers = {
        p.where
        for p in procs
        if set(p.env) & set(SIGNER_VARS) or any(m.source in holders for m in p.mounts)
    }
    expected = {p.where for p in procs if p.signs()}
    assert readers <= expected
    assert {p.where for p in procs if SIGNING_QUEUE in p.queues()} <= readers


@pytest.mark.parametrize("rendering", RENDERINGS)
def test_only_the_bridge_workers_hold_the_xchain_key(rendering: str) -> None:
    """The cross-chain key, said positively: with cross-chain on, the processes that can
    read it are exactly the bridge workers, each with ARBBOT_XCHAIN_KEY_FILE; off, none;
    and the signing key's readers and the cross-chain key's never meet."""
    procs = procs_of(rendering)
    bridge = {p.where for p in procs if p.signs_xchain()}
    assert bridge, f"{rendering}: no worker consumes {XCHAIN_QUEUE}"
    holders = xchain_key_sources(procs)
    readers = {p.where for p in procs if holds(p, XCHAIN_KEY_VARS, holders)}
    with_var = {p.where for p in procs if p.env.get("ARBBOT_XCHAIN_KEY_FILE")}
    if xchain_on(rendering):
        assert holders, f"{rendering}: found no Secret holding the cross-chain key"
        assert readers == bridge == with_var
    else:
        assert not holders and not readers and not with_var
    signers = {p.where for p in procs if holds(p, SIGNER_VARS, key_sources(procs))}
    assert signers and not signers & readers
    assert {p.where for p in procs if SIGNING_QUEUE in p.queues()} <= signers


def test_the_checks_catch_a_misplaced_xchain_key() -> None:
    """The cross-chain rules are live: the key given to the wrong pool, to a pool with the
    signer, taken from the bridge, or given while cross-chain is off is reported."""
    objs = [copy.deepcopy(o) for o in kustomize("k8s/overlays/production-xchain")]
    assert not env_problems(k8s_procs(objs, "ok"), xchain=True)
    (bridge,) = [
        o
        for o in objs
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "arbbot-worker-bridge"
    ]
    (execute,) = [
        o
        for o in objs
        if o["kind"] == "Deployment"
        and o["metadata"]["name"] == "arbbot-worker-execute"
    ]
    # 1. the execute pool also gets the cross-chain key (at a path of its own)
    b_spec = bridge["spec"]["template"]["spec"]
    e_spec = execute["spec"]["template"]["spec"]
    e_spec["volumes"] = [*e_spec["volumes"], *[v for v in b_spec["volumes"] if v["name"] == "xchain"]]
    e_spec["containers"][0]["volumeMounts"].append(
        {"name": "xchain", "mountPath": "/var/run/secrets/xchain", "readOnly": True}
    )
    e_spec["containers"][0]["env"].append(
        {"name": "ARBBOT_XCHAIN_KEY_FILE", "value": "/var/run/secrets/xchain/xchain.key"}
    )
    problems = "\n".join(env_problems(k8s_procs(objs, "execute"), xchain=True))
    assert (
        "arbbot-worker-execute container worker: has ARBBOT_XCHAIN_KEY_FILE but does not sign cross-chain legs"
        in problems
    )
    assert (
        "arbbot-worker-execute container worker: mounts the cross-chain key (secret:arbbot-xchain"
        in problems
    )
    assert (
        "arbbot-worker-execute container worker: has both the signing key and the cross-chain key"
        in problems
    )
    # 2. ... even when that pool consumes the bridge queue too
    command = e_spec["containers"][0]["command"]
    command[command.index("-Q") + 1] = "execute,bridge"
    problems = "\n".join(env_problems(k8s_procs(objs, "both"), xchain=True))
    assert "does not sign cross-chain legs" not in problems
    assert (
        "arbbot-worker-execute container worker: has both the signing key and the cross-chain key"
        in problems
    )
    # 3. the bridge pool loses its variable: it would run no cross-chain pass
    b_spec["containers"][0]["env"] = [
        e for e in b_spec["containers"][0]["env"] if e["name"] != "ARBBOT_XCHAIN_KEY_FILE"
    ]
    assert (
        "arbbot-worker-bridge container worker: consumes bridge but has no ARBBOT_XCHAIN_KEY_FILE"
        in "\n".join(env_problems(k8s_procs(objs, "x"), xchain=True))
    )
    # 4. Helm with cross-chain off: a bridge pool given the key anyway
    helm = helm_objects({})
    (h_bridge,) = [
        o for o in helm if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-worker-bridge")
    ]
    h_bridge["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "ARBBOT_XCHAIN_KEY", "valueFrom": {"secretKeyRef": {"name": "arbbot-xchain", "key": "xchain.key"}}}
    )
    assert (
        "arbbot-worker-bridge container worker: has the cross-chain key but cross-chain is off"
        in "\n".join(env_problems(k8s_procs(helm, "off"), xchain=False))
    )


def test_helm_refuses_the_signer_on_the_bridge_pool() -> None:
    import helm_python

    with pytest.raises(helm_python.HelmRenderError, match="the bridge pool never gets the execute signer"):
        helm_objects({"workers": {"bridge": {"signs": True}}})


def test_the_checks_catch_the_old_mistakes() -> None:
    """The rules are live: each way the manifests used to be wrong is reported."""
    objs = [copy.deepcopy(o) for o in kustomize("k8s/overlays/production")]
    assert not env_problems(k8s_procs(objs, "ok"))
    # 1. the key's path in the shared ConfigMap: every pod has the variable, most without the mount
    (cm,) = [
        o
        for o in objs
        if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "arbbot-config"
    ]
    cm["data"]["ARBBOT_SIGNER_KEY_FILE"] = "/var/run/secrets/arbbot/signer.key"
    problems = "\n".join(env_problems(k8s_procs(objs, "shared")))
    assert (
        "arbbot-web container web: has ARBBOT_SIGNER_KEY_FILE but does not sign"
        in problems
    )
    assert (
        "arbbot-web container web: ARBBOT_SIGNER_KEY_FILE names /var/run/secrets/arbbot/signer.key, which is not under any mount"
        in problems
    )
    del cm["data"]["ARBBOT_SIGNER_KEY_FILE"]
    # 2. a non-signing pool mounts the signer Secret
    (bridge,) = [
        o
        for o in objs
        if o["kind"] == "Deployment" and o["metadata"]["name"] == "arbbot-worker-bridge"
    ]
    (execute,) = [
        o
        for o in objs
        if o["kind"] == "Deployment"
        and o["metadata"]["name"] == "arbbot-worker-execute"
    ]
    bridge["spec"]["template"]["spec"] = copy.deepcopy(
        execute["spec"]["template"]["spec"]
    )
    bridge["spec"]["template"]["spec"]["containers"][0]["command"][5] = "bridge"
    problems = "\n".join(env_problems(k8s_procs(objs, "bridge")))
    assert (
        "arbbot-worker-bridge container worker: has ARBBOT_SIGNER_KEY_FILE but does not sign"
        in problems
    )
    assert (
        "arbbot-worker-bridge container worker: mounts the signing key (secret:arbbot-signer"
        in problems
    )
    # 3. the execute pool loses its mount, or its variable
    spec = execute["spec"]["template"]["spec"]
    spec["containers"][0]["volumeMounts"] = [
        m for m in spec["containers"][0]["volumeMounts"] if m["name"] != "signer"
    ]
    assert (
        "arbbot-worker-execute container worker: ARBBOT_SIGNER_KEY_FILE names"
        in "\n".join(env_problems(k8s_procs(objs, "x")))
    )
    spec["containers"][0]["env"] = []
    assert (
        "arbbot-worker-execute container worker: consumes execute but has no signer variable"
        in "\n".join(env_problems(k8s_procs(objs, "x")))
    )


def test_the_compose_checks_catch_a_shared_key_volume() -> None:
    """compose: a service that mounts the volume holding the devnet key at its
    ARBBOT_DEVNET_DIR reads the key through config.py's fallback, variable or not."""
    config = compose_config()
    assert not env_problems(compose_procs(config))
    execute = config["services"]["worker-execute"]
    key_mounts = [
        v
        for v in execute["volumes"]
        if "/run/secrets" in str(v.get("target", v) if isinstance(v, dict) else v)
    ]
    assert key_mounts
    web = config["services"]["web"]
    (mount,) = key_mounts
    source = mount["source"] if isinstance(mount, dict) else str(mount).split(":")[0]
    web["volumes"] = [
        *web.get("volumes", []),
        f"{source}:{web['environment']['ARBBOT_DEVNET_DIR']}:ro",
    ]
    problems = "\n".join(env_problems(compose_procs(config)))
    assert f"service web: mounts the signing key (volume:{source}" in problems


def test_helm_refuses_a_keystore_on_the_devnet() -> None:
    """The devnet's deployer is handed the raw key; with a keystore it would deploy for a
    different signer than the one the execute pool unlocks."""
    import helm_python

    with pytest.raises(
        helm_python.HelmRenderError, match="signer.keystore.enabled is for real chains"
    ):
        helm_objects(
            {"signer": {"keystore": {"enabled": True}}, "devnet": {"enabled": True}}
        )


def test_helm_keystore_mounts_only_the_keystore_and_its_password() -> None:
    procs = procs_of("helm:keystore")
    (execute,) = [p for p in procs if SIGNING_QUEUE in p.queues()]
    assert set(execute.env) & set(SIGNER_VARS) == {
        "ARBBOT_SIGNER_KEYSTORE_FILE",
        "ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE",
    }
    (mount,) = [m for m in execute.mounts if m.source.startswith("secret:")]
    assert mount.keys == {"keystore.json", "keystore-password"}
