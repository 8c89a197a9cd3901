"""``arbbot config apply`` checks what the chain must have on the chain itself (real anvil
with the genuine Uniswap V2/V3 contracts and the project's executor): Multicall3 with code,
each factory answering its kind's views, an init-code hash that reproduces the factory's
pools, the executor being arbbot's and owned as configured. Each failure names its entry and
nothing is written; an unreachable RPC is an error that suggests ``--offline``. And a devnet
and a user chain with the same chain id stay apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from django.core.exceptions import ValidationError

from arbbot.devnet.anvil import Anvil
from arbbot.devnet.record import Deployment
from arbbot.devnet.scenarios import deployed_devnet
from webapp.core import services
from webapp.core.models import Chain, Dex, Strategy
from tests.webapp.test_cli_config import arbbot

NO_CODE = "0x" + "de" * 20
WRONG_HASH = "0x" + "ab" * 32


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Anvil, Deployment]]:
    with deployed_devnet(tmp_path_factory.mktemp("devnet-config"), v3=True) as (anvil, dep):
        yield anvil, dep


def user_chain(dep: Deployment, **overrides: Any) -> dict[str, Any]:
    """The devnet's contracts configured as a user would configure their own chain."""
    entry: dict[str, Any] = {
        "chain_id": dep.chain_id,
        "name": "mine",
        "rpc_urls": [dep.rpc_url],
        "multicall3": dep.multicall3,
        "weth": dep.weth,
        "executor": dep.executor,
        "executor_owner": dep.deployer,
        "dexes": [{"name": d["name"], "kind": d["kind"], "factory": d["factory"], "init_code_hash": d["init_code_hash"]}
                  for d in dep.dexes],
        "tokens": [{"address": dep.weth, "symbol": "WETH", "decimals": 18},
                   {"address": dep.token("USDC"), "symbol": "USDC", "decimals": 18}],
        "strategy": {"max_hops": 3},
    }
    entry.update(overrides)
    return entry


def with_dex(dep: Deployment, name: str, **changes: Any) -> list[dict[str, Any]]:
    dexes = user_chain(dep)["dexes"]
    return [{**d, **changes} if d["name"] == name else d for d in dexes]


def assert_nothing_written() -> None:
    assert not Chain.objects.exists() and not Dex.objects.exists() and not Strategy.objects.exists()


def apply(entry: dict[str, Any]) -> str:
    """The error ``config apply`` (on-chain checks on) gives for one chain entry."""
    with pytest.raises(ValidationError) as err:
        services.config_apply({"chains": [entry]}, onchain=True)
    assert_nothing_written()
    return " ".join(err.value.messages)


# --------------------------------------------------------------------------- as a user runs it


@pytest.mark.django_db(transaction=True)
def test_a_good_chain_applies_after_its_checks(devnet: Any, tmp_path: Path) -> None:
    _, dep = devnet
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"chains": [user_chain(dep)]}))
    r = arbbot("config", "apply", str(path))
    assert r.returncode == 0, r.stderr
    assert Chain.objects.get(chain_id=dep.chain_id).executor == dep.executor
    assert Dex.objects.filter(chain__chain_id=dep.chain_id).count() == len(dep.dexes)


@pytest.mark.django_db(transaction=True)
def test_cli_names_a_missing_multicall3_and_writes_nothing(devnet: Any, tmp_path: Path) -> None:
    _, dep = devnet
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"chains": [user_chain(dep, multicall3=NO_CODE)]}))
    r = arbbot("config", "apply", str(path))
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"chains[0] (mine): multicall3: {NO_CODE} has no code" in r.stderr
    assert "Traceback" not in r.stderr
    assert_nothing_written()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_rpc_names_the_chain_and_suggests_offline(devnet: Any, tmp_path: Path) -> None:
    _, dep = devnet
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"chains": [user_chain(dep, rpc_urls=["http://127.0.0.1:9/SECRETKEY"])]}))
    r = arbbot("config", "apply", str(path))
    assert r.returncode == 2
    assert "chains[0] (mine): the chain's RPC cannot be reached" in r.stderr and "--offline" in r.stderr
    assert "SECRETKEY" not in r.stderr
    assert_nothing_written()
    r = arbbot("config", "apply", "--offline", str(path))
    assert r.returncode == 0, r.stderr
    assert Chain.objects.get(chain_id=dep.chain_id).rpc_urls == "http://127.0.0.1:9/SECRETKEY"


# --------------------------------------------------------------------------- each check


@pytest.mark.django_db
def test_a_blank_multicall3_is_refused(devnet: Any) -> None:
    _, dep = devnet
    assert "chains[0] (mine): multicall3: not set; the scanner reads every pool through Multicall3" in apply(
        user_chain(dep, multicall3=""))


@pytest.mark.django_db
def test_code_that_is_not_multicall3_is_refused(devnet: Any) -> None:
    _, dep = devnet
    message = apply(user_chain(dep, multicall3=dep.token("USDC")))
    assert f"chains[0] (mine): multicall3: {dep.token('USDC')} has code but does not answer getBlockNumber()" in message


@pytest.mark.django_db
def test_a_factory_without_code_is_named(devnet: Any) -> None:
    _, dep = devnet
    message = apply(user_chain(dep, dexes=with_dex(dep, "sushiswap", factory=NO_CODE)))
    assert f"chains[0] (mine).dexes[1] (sushiswap): factory {NO_CODE} has no code" in message


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "views"), [("uniswap", "allPairsLength()"),
                                              ("uniswap-v3", "owner() and feeAmountTickSpacing(500)")])
def test_a_factory_that_does_not_answer_its_views_is_named(devnet: Any, name: str, views: str) -> None:
    _, dep = devnet
    index = [d["name"] for d in dep.dexes].index(name)
    message = apply(user_chain(dep, dexes=with_dex(dep, name, factory=dep.token("DAI"))))
    assert f"chains[0] (mine).dexes[{index}] ({name}): factory {dep.token('DAI')} does not answer {views}" in message


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["sushiswap", "uniswap-v3"])
def test_a_wrong_init_code_hash_is_named(devnet: Any, name: str) -> None:
    _, dep = devnet
    index = [d["name"] for d in dep.dexes].index(name)
    message = apply(user_chain(dep, dexes=with_dex(dep, name, init_code_hash=WRONG_HASH)))
    assert f"chains[0] (mine).dexes[{index}] ({name}): init_code_hash {WRONG_HASH}" in message
    assert "wrong init-code hash" in message


@pytest.mark.django_db
def test_a_blank_init_code_hash_passes_when_the_genuine_one_reproduces_a_pool(devnet: Any) -> None:
    _, dep = devnet
    dexes = [{**d, "init_code_hash": ""} for d in user_chain(dep)["dexes"]]
    services.config_apply({"chains": [user_chain(dep, dexes=dexes)]}, onchain=True)
    assert Dex.objects.count() == len(dep.dexes)


@pytest.mark.django_db
def test_an_executor_that_is_not_ours_or_not_owned_as_configured_is_named(devnet: Any) -> None:
    _, dep = devnet
    assert f"chains[0] (mine): executor: {NO_CODE} has no code" in apply(user_chain(dep, executor=NO_CODE))
    usdc = dep.token("USDC")
    assert f"chains[0] (mine): executor: {usdc} does not run arbbot's ArbExecutor" in apply(
        user_chain(dep, executor=usdc))
    other = "0x" + "77" * 20
    assert (f"chains[0] (mine): executor: {dep.executor} is owned by {dep.deployer}, not by the configured "
            f"executor_owner {other}") in apply(user_chain(dep, executor_owner=other))
    assert f"was deployed for WETH {dep.weth}" in apply(user_chain(dep, weth=usdc))


@pytest.mark.django_db
def test_every_problem_is_listed_and_a_wrong_chain_id_stops_the_rest(devnet: Any) -> None:
    _, dep = devnet
    message = apply(user_chain(dep, multicall3=NO_CODE, dexes=with_dex(dep, "uniswap", factory=NO_CODE)))
    assert "chains[0] (mine): multicall3" in message and "chains[0] (mine).dexes[0] (uniswap): factory" in message
    message = apply(user_chain(dep, chain_id=dep.chain_id + 1))
    assert "chains[0] (mine): chain_id: the node at" in message and f"serves chain {dep.chain_id}, not" in message


# --------------------------------------------------------------------------- devnet apart


def devnet_record(dep: Deployment) -> dict[str, Any]:
    return {**dep.to_json(), "name": "devnet"}


@pytest.mark.django_db
def test_a_devnet_registration_never_overwrites_a_user_chain(devnet: Any) -> None:
    _, dep = devnet
    services.config_apply({"chains": [user_chain(dep, rpc_urls=["https://mine.example"])]})
    with pytest.raises(ValidationError) as err:
        services.chain_register_deployment(devnet_record(dep))
    assert f"chain {dep.chain_id} (mine) is a chain of your own" in err.value.messages[0]
    chain = Chain.objects.get(chain_id=dep.chain_id)
    assert (chain.name, chain.rpc_urls, chain.is_devnet) == ("mine", "https://mine.example", False)


@pytest.mark.django_db
def test_config_apply_does_not_turn_a_devnet_into_a_user_chain(devnet: Any) -> None:
    _, dep = devnet
    services.chain_register_deployment(devnet_record(dep))
    with pytest.raises(ValidationError) as err:
        services.config_apply({"chains": [user_chain(dep, rpc_urls=["https://mine.example"])]})
    assert f"chains[0] (mine): chain {dep.chain_id} is the devnet 'devnet'" in err.value.messages[0]
    assert "rpc_urls, multicall3, weth, executor, dexes, tokens come from that record" in err.value.messages[0]
    with pytest.raises(ValidationError):
        services.config_apply({"dexes": [{"chain_id": dep.chain_id, "name": "x", "factory": NO_CODE}]})
    chain = Chain.objects.get(chain_id=dep.chain_id)
    assert chain.is_devnet and chain.rpc_urls == dep.rpc_url and chain.name == "devnet"
    # tuning the devnet from a file is fine (and checked on it)
    services.config_apply({"chains": [{"chain_id": dep.chain_id, "mode": "paper", "strategy": {"max_hops": 2}}]},
                          onchain=True)
    chain.refresh_from_db()
    assert chain.is_devnet and chain.mode == "paper" and Strategy.objects.get(chain=chain).max_hops == 2


@pytest.mark.django_db
def test_the_devnet_registration_records_each_dex_init_code_hash(devnet: Any) -> None:
    _, dep = devnet
    record = devnet_record(dep)
    services.chain_register_deployment(record)
    stored = dict(Dex.objects.values_list("name", "init_code_hash"))
    assert stored == {d["name"]: d["init_code_hash"] for d in dep.dexes}
    # an older record without the field: the genuine hash of each kind (what the devnet deploys)
    older = {**record, "dexes": [{k: v for k, v in d.items() if k != "init_code_hash"} for d in dep.dexes]}
    Dex.objects.update(init_code_hash="")
    services.chain_register_deployment(older)
    assert dict(Dex.objects.values_list("name", "init_code_hash")) == stored
