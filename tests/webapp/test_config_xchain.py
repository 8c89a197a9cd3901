"""``config apply``'s ``xchain`` section: a good one is written and read back as the bridge
queue's pairs (and shown by ``config show``, endpoint redacted); each bad entry is named
and nothing of the file is written, its chains included; a pair with open sagas is not
removed; a quote-only bridge kind refuses the transfer a rebalance needs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from django.core.exceptions import ValidationError

from webapp.core import selectors, services
from webapp.core.models import Chain, Dex, XChainPair, XChainTarget, XChainToken

pytestmark = pytest.mark.django_db
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
A, B = 8453, 42161
USDC_A, USDC_B = "0x" + "a1" * 20, "0x" + "b1" * 20
WETH_A, WETH_B = "0x" + "a2" * 20, "0x" + "b2" * 20
BRIDGE_A, BRIDGE_B = "0x" + "a3" * 20, "0x" + "b3" * 20
V2_HASH = "0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f"


def chain(chain_id: int, weth: str, factory: str) -> dict[str, Any]:
    return {"chain_id": chain_id, "name": f"c{chain_id}", "rpc_urls": [f"https://rpc{chain_id}.example"], "weth": weth,
            "dexes": [{"name": "uni", "kind": "v2", "factory": factory, "init_code_hash": V2_HASH,
                       "router": "0x" + "cc" * 20},
                      {"name": "uni3", "kind": "v3", "factory": "0x" + "dd" * 19 + f"{chain_id % 256:02x}"}]}


def config(**pair: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": "ab", "chains": [A, B], "dex": "uni", "quote": "USDC", "base": "WETH",
        "bridge": {"kind": "devnet", "contracts": {A: BRIDGE_A, B: BRIDGE_B}, "fee_bps": 10, "delay_blocks": 3,
                   "fixed_fee": {"USDC": "7"}},
        "tokens": [{"symbol": "USDC", "canonical": {"chain_id": A, "address": USDC_A},
                    "bridged": {"chain_id": B, "address": USDC_B}},
                   {"symbol": "WETH", "canonical": {"chain_id": A, "address": WETH_A},
                    "bridged": {"chain_id": B, "address": WETH_B}}],
        "inventory": [{"symbol": "USDC", "chain_id": B, "target_bps": 3000, "tolerance_bps": 500,
                       "min_transfer": "1000"}],
        "costs": {"trades_per_rebalance": 2, "min_profit": "5"},
    }
    entry.update(pair)
    return {"chains": [chain(A, WETH_A, "0x" + "f1" * 20), chain(B, WETH_B, "0x" + "f2" * 20)],
            "xchain": {"pairs": [entry]}}


def edit(change: Callable[[dict[str, Any]], None], **pair: Any) -> dict[str, Any]:
    data = copy.deepcopy(config(**pair))
    change(data["xchain"]["pairs"][0])
    return data


def test_a_pair_is_applied_read_back_as_the_bridge_queue_sees_it_and_shown() -> None:
    counts = services.config_apply(config(), source="test")
    assert counts["xchain_pairs"] == 1 and counts["chains"] == 2
    (pair,) = selectors.xchain_pairs()
    assert (pair.name, pair.a.chain_id, pair.b.chain_id) == ("ab", A, B)
    assert (pair.a.weth, pair.a.router, pair.a.factory) == (WETH_A, "0x" + "cc" * 20, "0x" + "f1" * 20)
    assert pair.tokens == {"USDC": {A: USDC_A, B: USDC_B}, "WETH": {A: WETH_A, B: WETH_B}}
    assert (pair.bridge.kind, dict(pair.bridge.contracts), pair.bridge.delay_blocks) == (
        "devnet", {A: BRIDGE_A, B: BRIDGE_B}, 3)
    # a target given on the second chain is the first chain's complement; WETH keeps the default band
    usdc = pair.config.band("USDC")
    assert (usdc.target_bps, usdc.tolerance_bps, usdc.min_transfer) == (7000, 500, 1000)
    assert pair.config.band("WETH").target_bps == 5000
    costs = pair.costs(gas=11)
    assert (costs.gas, costs.bridge_fee_bps, costs.bridge_fixed_fee, costs.delay_blocks,
            costs.trades_per_rebalance, costs.min_profit) == (11, 10, 7, 3, 2, 5)

    shown = selectors.config_effective()["xchain"]["pairs"]
    assert shown[0]["bridge"]["sends"] is True and shown[0]["tokens"][0]["bridged"] == {"chain_id": B,
                                                                                        "address": USDC_B}
    assert selectors.config_effective(A)["xchain"]["pairs"][0]["name"] == "ab"
    from tests.webapp.api_support import role_client

    (api,) = role_client("viewer").get("/api/xchain/pairs/").json()
    assert (api["name"], api["chains"], api["bridge"]["contracts"]) == ("ab", [A, B], {str(A): BRIDGE_A,
                                                                                        str(B): BRIDGE_B})
    assert api["inventory"] == [{"symbol": "USDC", "chain_id": B, "target_bps": 3000, "tolerance_bps": 500,
                                 "min_transfer": "1000"}]

    # the same file again changes nothing; a file without xchain keeps the pairs in force
    services.config_apply(config())
    services.config_apply({"chains": [{"chain_id": A, "mode": "paper"}]})
    assert XChainPair.objects.count() == 1 and XChainToken.objects.count() == 2 and XChainTarget.objects.count() == 1
    # a pair left out of an xchain section is removed
    services.config_apply({"xchain": {"pairs": []}})
    assert not XChainPair.objects.exists() and not XChainToken.objects.exists()


def _swap_tokens_chain(p: dict[str, Any]) -> None:
    p["tokens"][0]["bridged"]["chain_id"] = 10


def _same_side(p: dict[str, Any]) -> None:
    p["tokens"][1]["bridged"]["chain_id"] = A


def _missing_contract(p: dict[str, Any]) -> None:
    del p["bridge"]["contracts"][B]


def _bad_sum(p: dict[str, Any]) -> None:
    p["inventory"].append({"symbol": "USDC", "chain_id": A, "target_bps": 6000, "tolerance_bps": 500,
                           "min_transfer": "1000"})


def _other_tolerance(p: dict[str, Any]) -> None:
    p["inventory"].append({"symbol": "USDC", "chain_id": A, "target_bps": 7000, "tolerance_bps": 900,
                           "min_transfer": "1000"})


def _bad_address(p: dict[str, Any]) -> None:
    p["tokens"][1]["canonical"]["address"] = "0x1234"


def _unknown_chain(p: dict[str, Any]) -> None:
    p["chains"] = [A, 10]
    p["bridge"]["contracts"] = {A: BRIDGE_A, 10: BRIDGE_B}
    for t in p["tokens"]:
        t["bridged"]["chain_id"] = 10
    p["inventory"] = []


@pytest.mark.parametrize(("change", "pair", "message"), [
    (lambda p: p.update(brige={}), {}, "xchain.pairs[0] (ab): unknown field 'brige'"),
    (lambda p: p["bridge"].update(kind="wormhole"), {},
     "xchain.pairs[0] (ab).bridge: kind: 'wormhole' is not one of devnet, across, stargate, cctp"),
    (_missing_contract, {},
     "xchain.pairs[0] (ab).bridge: contracts: the devnet bridge needs its DevBridge on both chains (missing 42161)"),
    (lambda p: p["bridge"].update(kind="across"), {},
     "xchain.pairs[0] (ab).bridge: delay_s: missing (a across bridge is priced with its expected delivery time)"),
    (lambda p: p["bridge"].update(fee_bps=10_001), {}, "xchain.pairs[0] (ab).bridge: fee_bps: 10001 is above"),
    (_swap_tokens_chain, {},
     "xchain.pairs[0] (ab).tokens[0] (USDC): bridged.chain_id: 10 is not one of the pair's chains [8453, 42161]"),
    (_same_side, {}, "xchain.pairs[0] (ab).tokens[1] (WETH): bridged.chain_id: the bridged representation must be "
                     "on the other chain"),
    (_bad_address, {}, "xchain.pairs[0] (ab).tokens[1] (WETH): canonical.address: '0x1234' is not a valid EVM"),
    (lambda p: None, {"quote": "DAI"}, "xchain.pairs[0] (ab): quote: 'DAI' is not one of the pair's tokens"),
    (lambda p: None, {"chains": [A, A]}, "xchain.pairs[0] (ab): chains: the two chains must differ"),
    (_bad_sum, {}, "xchain.pairs[0] (ab).inventory[1] (USDC@8453): target_bps: 6000 here and 3000 on chain 42161 "
                   "must add up to 10000"),
    (_other_tolerance, {}, "xchain.pairs[0] (ab).inventory[1] (USDC@8453): tolerance_bps: 900 here but 500"),
    (lambda p: p["inventory"][0].update(symbol="DAI"), {},
     "xchain.pairs[0] (ab).inventory[0] (DAI@42161): symbol: 'DAI' is not one of the pair's tokens"),
    (_unknown_chain, {}, "xchain.pairs[0] (ab): chains: chain 10 is not configured"),
    (lambda p: None, {"dex": "sushi"}, "xchain.pairs[0] (ab): dex: chain 8453 has no dex 'sushi'"),
    (lambda p: None, {"dex": "uni3"}, "xchain.pairs[0] (ab): dex: 'uni3' on chain 8453 must be a V2 DEX with a router"),
], ids=["unknown-field", "bridge-kind", "devnet-contracts", "delay_s", "fee_bps", "token-chain", "same-side",
        "token-address", "quote", "same-chains", "target-sum", "tolerance", "inventory-symbol", "unknown-chain",
        "no-dex", "v3-dex"])
def test_each_bad_entry_is_named_and_nothing_is_written(change: Callable[[dict[str, Any]], None],
                                                       pair: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        services.config_apply(edit(change, **pair))
    assert message in " ".join(err.value.messages)
    assert not Chain.objects.exists() and not Dex.objects.exists() and not XChainPair.objects.exists()


def test_a_duplicate_pair_name_is_named() -> None:
    data = config()
    data["xchain"]["pairs"].append(copy.deepcopy(data["xchain"]["pairs"][0]))
    with pytest.raises(ValidationError, match=r"xchain.pairs\[1\] \(ab\): name: ab is also used by xchain.pairs\[0\]"):
        services.config_apply(data)
    assert not Chain.objects.exists()


def test_a_pair_with_open_sagas_stays() -> None:
    from arbbot.crosschain.saga import Saga

    services.config_apply(config())
    services.xchain_sagas_record([Saga("rebalance", "ab:r1", plan={"pair": "ab", "symbol": "USDC"},
                                       wallet="0x" + "ee" * 20)])
    with pytest.raises(ValidationError, match="pair 'ab' is not in the file but 1 of its saga"):
        services.config_apply({"xchain": {"pairs": []}})
    assert XChainPair.objects.filter(name="ab").exists()


def test_a_quote_only_bridge_is_quoted_and_refuses_the_transfer() -> None:
    from arbbot.crosschain import engine
    from arbbot.crosschain.saga import Rebalance, advance, rebalance_saga

    services.config_apply(edit(lambda p: p["bridge"].update(kind="cctp", delay_s=900)))
    (pair,) = selectors.xchain_pairs()
    assert "quote-only" in (engine.transfer_refusal(pair) or "")
    chains = engine.chains_for(pair, "0x" + "11" * 32)  # no node is asked: the refusal comes first
    saga = rebalance_saga(Rebalance("USDC", A, B, 10_000), chains, "ab:cctp")
    assert (saga.legs[0].predicted_out, saga.plan["fee"]) == (10_000 - 10 - 7, "17")  # fee_bps and fixed_fee
    saga.plan["pair"] = "ab"
    saga_id = services.xchain_sagas_record([saga])[0]
    assert advance(services.DbSagaStore(), chains, saga_id).state == "failed"
    failed = services.DbSagaStore().get(saga_id)
    assert failed.error.startswith("refused: bridge cctp") and failed.legs[0].state == "planned"
    assert not failed.legs[0].raw_tx  # nothing signed


def test_the_example_applies_after_its_two_chains() -> None:
    for name in ("base.yaml", "arbitrum.yaml", "xchain-base-arbitrum.yaml"):
        services.config_apply(yaml.safe_load((EXAMPLES / name).read_text()), source=name)
    (pair,) = selectors.xchain_pairs()
    assert (pair.name, pair.bridge.kind, pair.a.chain_id, pair.b.chain_id) == ("base-arbitrum", "across", A, B)
    assert pair.config.band("WETH").target_bps == 6000
    modes = [Chain.objects.get(chain_id=c.chain_id).mode for c in pair.chains]  # what the bridge tick reads
    assert all(m == "dry-run" for m in modes), "an example must never trade live by itself"
    shown = selectors.config_effective()["xchain"]["pairs"][0]
    assert shown["bridge"]["endpoint"].startswith("https://app.across.to") and "fees" not in shown["bridge"]["endpoint"]
    assert shown["bridge"]["sends"] is False


def test_a_chain_file_cannot_take_away_what_a_pair_in_force_uses() -> None:
    services.config_apply(config())
    no_router = chain(A, WETH_A, "0x" + "f1" * 20)
    del no_router["dexes"][0]["router"]
    with pytest.raises(ValidationError, match=r"xchain pair 'ab' \(in force\): dex: 'uni' on chain 8453 must be a "
                                              r"V2 DEX with a router"):
        services.config_apply({"chains": [no_router]})
    assert Dex.objects.get(chain__chain_id=A, name="uni").router == "0x" + "cc" * 20  # nothing written
