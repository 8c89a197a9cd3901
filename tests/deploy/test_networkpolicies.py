"""The NetworkPolicies, evaluated: for each pod of a rendering (every Kustomize overlay,
the Helm chart), which peers it may reach and which may reach it, by the rules of the
Kubernetes NetworkPolicy API (a pod selected by no policy of a direction is open in that
direction; else a connection needs one rule of one selecting policy that matches its peer
and port). Default deny both ways; execute and the other chain readers reach only RPC and
relays on public addresses (plus DNS, the broker, Redis, the database); path, ml,
analytics, beat and Flower reach no Internet; web is reached only from the ingress
controller (and monitoring)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.deploy.support import by_kind, helm_objects, kustomize, overlays

NS = "arbbot"


@dataclass(frozen=True)
class Peer:
    port: int
    proto: str = "TCP"
    ip: str | None = None  # outside the cluster
    namespace: str | None = None  # a pod in the cluster
    labels: dict[str, str] = field(default_factory=dict)

    def __hash__(self) -> int:
        return hash((self.port, self.ip, self.namespace, tuple(sorted(self.labels.items()))))


def selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for e in selector.get("matchExpressions") or []:
        has, value = e["key"] in labels, labels.get(e["key"])
        op = e["operator"]
        if (op == "In" and value not in e["values"]) or (op == "NotIn" and value in e["values"]) or \
                (op == "Exists" and not has) or (op == "DoesNotExist" and has):
            return False
    return True


def peer_matches(rule_peers: list[dict[str, Any]] | None, peer: Peer) -> bool:
    if not rule_peers:
        return True
    for p in rule_peers:
        if "ipBlock" in p:
            if peer.ip is None:
                continue  # pods are matched by selectors here
            ip = ipaddress.ip_address(peer.ip)
            block = p["ipBlock"]
            if ip in ipaddress.ip_network(block["cidr"]) and not any(
                    ip in ipaddress.ip_network(x) for x in block.get("except") or []):
                return True
            continue
        if peer.namespace is None:
            continue
        ns_sel, pod_sel = p.get("namespaceSelector"), p.get("podSelector")
        ns_ok = selects(ns_sel, {"kubernetes.io/metadata.name": peer.namespace}) if ns_sel is not None \
            else peer.namespace == NS
        if ns_ok and selects(pod_sel, peer.labels):
            return True
    return False


def port_matches(ports: list[dict[str, Any]] | None, peer: Peer) -> bool:
    return not ports or any(p.get("protocol", "TCP") == peer.proto and p.get("port") in (None, peer.port)
                            for p in ports)


def allowed(policies: list[dict[str, Any]], pod: dict[str, str], peer: Peer, direction: str) -> bool:
    selecting = [p for p in policies if selects(p["spec"]["podSelector"], pod)
                 and direction in p["spec"].get("policyTypes", ["Ingress"])]
    if not selecting:
        return True
    key, side = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    return any(port_matches(r.get("ports"), peer) and peer_matches(r.get(side), peer)
               for p in selecting for r in p["spec"].get(key) or [])


def pods(objs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """component -> the pod template's labels (followers by their component's prefix)."""
    out = {}
    for o in objs:
        if o["kind"] in ("Deployment", "Job"):
            labels = o["spec"]["template"]["metadata"]["labels"]
            comp = labels.get("app.kubernetes.io/component", "")
            out["follower" if comp.startswith("follower") else comp] = labels
    return out


RPC = Peer(443, ip="203.0.113.10")
RPC_HTTP = Peer(8545, ip="198.51.100.7")
SSH = Peer(22, ip="203.0.113.10")
METADATA = Peer(80, ip="169.254.169.254")
PRIVATE_HTTPS = Peer(443, ip="10.20.0.5")
DB, BROKER, REDIS = Peer(5432, ip="10.1.2.3"), Peer(5672, ip="10.1.2.4"), Peer(6379, ip="10.1.2.5")
DNS = Peer(53, "UDP", namespace="kube-system", labels={"k8s-app": "kube-dns"})
CHAIN_READERS = {"worker-scan", "worker-execute", "worker-bridge", "follower", "web"}
OFFLINE = {"worker-path", "worker-ml", "worker-analytics", "beat", "flower"}


def check(objs: list[dict[str, Any]]) -> list[str]:
    policies = by_kind(objs, "NetworkPolicy")
    found = pods(objs)
    problems = []
    assert CHAIN_READERS | OFFLINE <= set(found), sorted(found)

    def want(comp: str, peer: Peer, direction: str, expected: bool, what: str) -> None:
        if allowed(policies, found[comp], peer, direction) != expected:
            problems.append(f"{comp}: {what} {'denied' if expected else 'allowed'}")

    for comp in CHAIN_READERS | OFFLINE:
        for peer, what in ((DNS, "DNS"), (DB, "the database"), (BROKER, "the broker"), (REDIS, "Redis")):
            want(comp, peer, "Egress", True, what)
        for peer, what in ((SSH, "ssh out"), (METADATA, "the metadata service"), (PRIVATE_HTTPS, "a private HTTPS")):
            want(comp, peer, "Egress", False, what)
        want(comp, RPC, "Egress", comp in CHAIN_READERS, "an RPC endpoint/relay")
        want(comp, RPC_HTTP, "Egress", comp in CHAIN_READERS, "a JSON-RPC endpoint")
        want(comp, Peer(8000, namespace="default", labels={"app": "x"}), "Ingress", False, "ingress from elsewhere")
    web = found["web"]
    want("web", Peer(8000, namespace="ingress-nginx", labels={"app.kubernetes.io/name": "ingress-nginx"}), "Ingress",
         True, "the ingress controller")
    want("web", Peer(8000, namespace=NS, labels={**found["worker-scan"]}), "Ingress", False, "a worker to web")
    want("worker-execute", Peer(9808, namespace="monitoring", labels={"app": "prometheus"}), "Ingress", True,
         "metrics scrape")
    want("worker-execute", Peer(9808, namespace=NS, labels=found["worker-path"]), "Ingress", False, "a pod to execute")
    assert web
    if "devnet-init" in found:  # the dev clusters' in-namespace node
        node = found["devnet"]
        want("devnet-init", Peer(8545, namespace=NS, labels=node), "Egress", True, "the devnet node")
        want("worker-execute", Peer(8545, namespace=NS, labels=node), "Egress", True, "the devnet node")
        want("devnet", Peer(8545, namespace=NS, labels=found["worker-execute"]), "Ingress", True, "a worker to devnet")
    return problems


@pytest.mark.parametrize("overlay", ["k8s/base", *overlays()])
def test_kustomize_network_policies(overlay: str) -> None:
    assert not check(list(kustomize(overlay)))


@pytest.mark.parametrize("values", [{}, {"devnet": {"enabled": True}}])
def test_helm_network_policies(values: dict[str, Any]) -> None:
    assert not check(helm_objects(values))


def test_the_evaluation_catches_an_open_egress() -> None:
    objs = list(kustomize("k8s/base"))
    rpc = next(p for p in by_kind(objs, "NetworkPolicy") if p["metadata"]["name"].endswith("egress-rpc-and-relays"))
    rpc["spec"]["podSelector"] = {}  # every pod to the Internet
    assert "worker-path: an RPC endpoint/relay allowed" in check(objs)
    del rpc["spec"]["egress"][0]["to"][0]["ipBlock"]["except"]
    assert "worker-execute: the metadata service allowed" not in check(objs), "port 80 is not an RPC port"
    assert "worker-execute: a private HTTPS allowed" in check(objs)
