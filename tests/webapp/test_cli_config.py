"""``arbbot config apply/show`` and ``arbbot mode`` run as a user runs them (subprocesses on
this run's test database), every error path with its message and exit code, and the
services and selectors behind them called directly: strategy versions, the live rules,
and the path and ml stages reading the strategy in force."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.exceptions import ValidationError

from arbbot.scoring.rule import MAX_SENDS_PER_BLOCK
from webapp.core import config_schema, selectors, services
from webapp.core.models import Chain, Dex, PoolFilter, Strategy, Token

ROOT = Path(__file__).resolve().parents[2]
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
EXECUTOR = "0x" + "ee" * 20


def arbbot(*args: str) -> subprocess.CompletedProcess[str]:
    from django.db import connection

    env = {**os.environ, "ARBBOT_DATABASE_NAME": connection.settings_dict["NAME"]}
    return subprocess.run(
        [sys.executable, "manage.py", "arbbot", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def chain_entry(**overrides: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "chain_id": 1,
        "name": "ethereum",
        "rpc_urls": ["https://rpc.example/v2/SECRETKEY", "https://backup.example"],
        "ws_urls": ["wss://ws.example/SECRETKEY"],
        "multicall3": "0xcA11bde05977b3631167028862bE2a173976CA11",
        "weth": WETH,
        "mode": "dry-run",
        "submission_route": "private",
        "relay_urls": ["https://user:SECRETKEY@relay.example/bundle?key=SECRETKEY"],
        "dexes": [
            {"name": "uniswap-v2", "kind": "v2", "factory": "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f",
             "init_code_hash": "0x96e8ac4277198ff8b6f785478aa9a39f403cb768dd02cbee326c3e7da348845f",
             "start_block": 10000834},
            {"name": "uniswap-v3", "kind": "v3", "factory": "0x1F98431c8aD98523631AE4a59f267346ea31F984",
             "start_block": 12369621},
            {"name": "sushiswap", "kind": "v2", "factory": "0xC0AEe478e3658e2610c5F7A4A2E1777cE9e4f2Ac",
             "init_code_hash": "0xe18a34eb0e04b04f7a0ac29a6e80748dca96319b42c54d679cb821dca90c6303"},
        ],
        "tokens": [{"address": WETH, "symbol": "WETH", "decimals": 18}, {"address": USDC, "symbol": "USDC", "decimals": 6}],
        "pool_filter": {"deny_tokens": ["0x" + "dd" * 20], "min_liquidity": {"token": WETH, "amount": "10"}},
        "strategy": {"start_tokens": [WETH, USDC], "max_hops": 2, "margin": "1.25",
                     "max_amount_in": {WETH: "5000000000000000000"}, "min_profit_wei": 1000,
                     "max_sends_per_block": 5},
    }
    entry.update(overrides)
    return entry


def write(tmp_path: Path, data: Any, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return str(path)


def assert_nothing_written() -> None:
    assert not Chain.objects.exists() and not Dex.objects.exists() and not Strategy.objects.exists()


# --------------------------------------------------------------------------- as a user runs it


@pytest.mark.django_db(transaction=True)
def test_apply_then_show_prints_the_configuration_without_secrets(tmp_path: Path) -> None:
    r = arbbot("config", "apply", "--offline", write(tmp_path, {"chains": [chain_entry()]}))
    assert r.returncode == 0, r.stderr
    assert "1 chain(s), 3 dex(es), 2 token(s), 1 pool filter(s), 1 new strategy version(s)" in r.stdout
    assert Dex.objects.get(name="sushiswap").init_code_hash.startswith("0xe18a34eb")
    assert not PoolFilter.objects.get().discover_tokens, "a token list means: only these tokens"

    r = arbbot("config", "show", "--chain", "1")
    assert r.returncode == 0, r.stderr
    assert "SECRETKEY" not in r.stdout and "user" not in r.stdout
    shown = yaml.safe_load(r.stdout)["chains"][0]
    assert shown["rpc_urls"] == ["https://rpc.example/…", "https://backup.example"]
    assert shown["ws_urls"] == ["wss://ws.example/…"]
    assert shown["relay_urls"] == ["https://relay.example/…"]
    assert (shown["mode"], shown["mode_from"]) == ("dry-run", "chain")
    assert [d["name"] for d in shown["dexes"]] == ["sushiswap", "uniswap-v2", "uniswap-v3"]
    assert shown["strategy"] == {
        "version": 1, "start_tokens": [WETH, USDC], "max_hops": 2, "min_profit_wei": "1000", "margin": "1.25",
        "max_amount_in": {WETH: "5000000000000000000"}, "max_fee_per_gas_wei": None, "max_sends_per_block": 5,
    }
    assert shown["pool_filter"]["min_liquidity"] == {"token": WETH, "amount": "10"}

    r = arbbot("config", "show")
    assert r.returncode == 0 and len(yaml.safe_load(r.stdout)["chains"]) == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("chains:\n  - chain_id: 1\n    name: [unclosed\n", "not valid YAML at line 4, column 1"),
        ({"chains": [chain_entry(rpc_url=["https://x.example"])]},
         "chains[0] (ethereum): unknown field 'rpc_url' (expected one of: chain_id, name, rpc_urls,"),
        ({"chains": [chain_entry(weth="0x123")]}, "chains[0] (ethereum): weth: '0x123' is not a valid EVM address"),
        ({"chains": [chain_entry(rpc_urls=["https://a.example", "wss://b.example/SECRETKEY"])]},
         "chains[0] (ethereum): rpc_urls[1] 'wss://b.example/…' is a WebSocket URL: the RPC client speaks HTTP "
         "only; put it under ws_urls"),
        ({"chains": [chain_entry(dexes=[*chain_entry()["dexes"][:2], {**chain_entry()["dexes"][2], "init_code_hash": "0xe18a"}])]},
         "chains[0] (ethereum).dexes[2] (sushiswap): init_code_hash: not 32 bytes of hex"),
        ({"chains": [chain_entry(dexes=[{"name": "nofactory", "kind": "v2"}])]},
         "chains[0] (ethereum).dexes[0] (nofactory): factory: missing"),
        ({"chains": [chain_entry(strategy={"max_amount_in": {WETH: -1}})]},
         f"chains[0] (ethereum).strategy: max_amount_in[{WETH}]: -1 is below the minimum 0"),
        ({"chains": [chain_entry(strategy={"max_hops": 7})]}, "chains[0] (ethereum).strategy: max_hops: 7 is above the maximum 4"),
        ({"chains": [chain_entry(strategy={"max_sends_per_block": 0})]},
         "chains[0] (ethereum).strategy: max_sends_per_block: 0 is below the minimum 1"),
        ({"chains": [chain_entry(mode="live", executor=EXECUTOR)]},
         "chains[0] (ethereum): mode: live sends real transactions; it needs the operator's explicit yes (--yes-live)"),
        ({"dexes": [{"chain_id": 999, "name": "x", "factory": "0x5C69bEe701ef814a2B6a3EDD4B1652CB9cc5aA6f"}]},
         "dexes[0] (x): unknown chain 999 (declare it under 'chains' first)"),
        ({"chains": [chain_entry()], "xchain": {"pairs": [
            {"name": "ab", "chains": [1, 1], "dex": "uniswap-v2", "quote": "USDC", "base": "WETH",
             "bridge": {"kind": "devnet"}, "tokens": [{}]}]}},
         "xchain.pairs[0] (ab): chains: the two chains must differ (both are 1)"),
    ],
    ids=["bad-yaml", "unknown-field", "bad-address", "ws-in-rpc_urls", "bad-init-code-hash", "dex-without-factory",
         "negative-cap", "max-hops", "no-sends", "live-without-yes", "unknown-chain", "xchain-pair"],
)
def test_bad_input_is_named_with_exit_code_2_and_nothing_is_written(tmp_path: Path, content: Any, message: str) -> None:
    r = arbbot("config", "apply", "--offline", write(tmp_path, content))
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stderr
    assert "SECRETKEY" not in r.stderr and "Traceback" not in r.stderr
    assert_nothing_written()


@pytest.mark.django_db(transaction=True)
def test_a_missing_file_and_an_unknown_chain_are_bad_input(tmp_path: Path) -> None:
    r = arbbot("config", "apply", str(tmp_path / "nope.yaml"))
    assert r.returncode == 2 and "cannot read" in r.stderr and "No such file or directory" in r.stderr
    r = arbbot("config", "show", "--chain", "999")
    assert r.returncode == 2 and "unknown chain 999" in r.stderr
    r = arbbot("mode", "paper", "--chain", "999")
    assert r.returncode == 2 and "unknown chain 999" in r.stderr


@pytest.mark.django_db(transaction=True)
def test_mode_sets_and_shows_and_refuses_live_without_yes(tmp_path: Path) -> None:
    assert arbbot("config", "apply", "--offline", write(tmp_path, {"chains": [chain_entry()]})).returncode == 0

    r = arbbot("mode", "live", "--chain", "1")
    assert r.returncode == 2
    assert "refusing to set chain 1 live without --yes-live" in r.stderr
    assert Chain.objects.get().mode == "dry-run"

    r = arbbot("mode", "live", "--chain", "1", "--yes-live")
    assert r.returncode == 2, "live also needs an executor on the chain"
    assert "mode: live needs an executor on this chain" in r.stderr
    assert Chain.objects.get().mode == "dry-run"

    r = arbbot("mode", "paper")
    assert r.returncode == 2 and "name the chain to set to paper: arbbot mode paper --chain ID" in r.stderr

    r = arbbot("mode", "paper", "--chain", "1")
    assert r.returncode == 0, r.stderr
    assert "chain 1 (ethereum): paper (set on the chain)" in r.stdout
    assert Chain.objects.get().mode == "paper"

    Chain.objects.filter(chain_id=1).update(executor=EXECUTOR)
    r = arbbot("mode", "live", "--chain", "1", "--yes-live")
    assert r.returncode == 0, r.stderr
    r = arbbot("mode", "status")
    assert r.returncode == 0 and "chain 1 (ethereum): live (set on the chain)" in r.stdout

    r = arbbot("mode", "maybe")
    assert r.returncode == 2 and "invalid choice: 'maybe'" in r.stderr


@pytest.mark.django_db(transaction=True)
def test_help_names_the_config_and_mode_groups() -> None:
    r = arbbot("--help")
    assert r.returncode == 0 and "config" in r.stdout and "mode" in r.stdout
    r = arbbot("config", "apply", "--help")
    assert r.returncode == 0 and "--yes-live" in r.stdout


# --------------------------------------------------------------------------- services, directly


@pytest.mark.django_db
def test_a_failing_entry_after_good_ones_leaves_nothing_behind() -> None:
    good = chain_entry()
    bad = chain_entry(chain_id=2, name="second", explorer_url="ftp://x.example")
    with pytest.raises(ValidationError) as err:
        services.config_apply({"chains": [good, bad]})
    assert "chains[1] (second): explorer_url: 'ftp://x.example' is not an http(s) URL" in err.value.messages[0]
    assert_nothing_written()
    assert not Token.objects.exists()


@pytest.mark.django_db
def test_fields_left_out_keep_their_value_and_the_strategy_is_versioned() -> None:
    services.config_apply({"chains": [chain_entry(executor=EXECUTOR)]})
    services.config_apply({"chains": [{"chain_id": 1, "name": "ethereum", "explorer_url": "https://etherscan.io"}]})
    chain = Chain.objects.get()
    assert chain.executor == EXECUTOR and chain.weth == WETH and chain.explorer_url == "https://etherscan.io"
    assert selectors.strategy_for(1).version == 1

    counts = services.config_apply({"chains": [chain_entry(strategy={"start_tokens": [USDC], "margin": 2})]})
    assert counts["strategies"] == 1
    s = selectors.strategy_for(1)
    assert (s.version, s.start_tokens, s.max_hops, s.margin, s.max_amount_in) == (2, (USDC,), 3, Fraction(2), {})
    assert (selectors.strategy_for(1).max_sends_per_block, s.max_sends_per_block) == (MAX_SENDS_PER_BLOCK,) * 2
    assert list(Strategy.objects.order_by("version").values_list("version", flat=True)) == [1, 2]


@pytest.mark.django_db
def test_strategy_defaults_without_a_row() -> None:
    s = selectors.strategy_for(12345)
    assert (s.version, s.start_tokens, s.max_hops, s.margin) == (0, (), 3, Fraction(3, 2))
    assert s.max_sends_per_block == MAX_SENDS_PER_BLOCK == 8


@pytest.mark.django_db
def test_chain_mode_set_rules() -> None:
    services.config_apply({"chains": [chain_entry()]})
    with pytest.raises(ValidationError, match="explicit yes"):
        services.chain_mode_set(1, "live")
    with pytest.raises(ValidationError, match="needs an executor"):
        services.chain_mode_set(1, "live", confirm_live=True)
    with pytest.raises(ValidationError, match="'fast' is not one of dry-run, paper, live"):
        services.chain_mode_set(1, "fast")
    with pytest.raises(ValidationError, match="unknown chain 7"):
        services.chain_mode_set(7, "paper")
    assert services.chain_mode_set(1, "paper").mode == "paper"
    # A chain already live stays live when its file is applied again without --yes-live.
    Chain.objects.filter(chain_id=1).update(mode="live", executor=EXECUTOR)
    services.config_apply({"chains": [chain_entry(mode="live")]})
    assert Chain.objects.get().mode == "live"


@pytest.mark.django_db
def test_schema_rejects_what_the_model_would_accept_silently() -> None:
    cases = {
        "unquoted 0x": ({"chains": [chain_entry(weth=0x1234)]}, "(quote it: YAML read it as a number)"),
        "bool as int": ({"chains": [chain_entry(confirmations=True)]}, "confirmations: True is not a whole number"),
        "tokens word": ({"chains": [chain_entry(tokens="all")]}, "tokens: must be 'discover' or a list of tokens"),
        "dup factory": (
            {"chains": [chain_entry(dexes=[{"name": "a", "factory": WETH}, {"name": "b", "factory": WETH}])]},
            f"dexes[1] (b): factory: {WETH} is also used by chains[0] (ethereum).dexes[0] (a)",
        ),
        "margin < 1": ({"chains": [chain_entry(strategy={"margin": 0.5})]}, "margin: 0.5 must be a number >= 1"),
        "mode twice": (
            {"chains": [chain_entry(mode="paper", strategy={"mode": "dry-run"})]},
            "mode: 'paper' here but 'dry-run' in strategy.mode; give it once",
        ),
        "private, no relay": ({"chains": [chain_entry(relay_urls=[])]}, "the private route needs at least one relay URL"),
        "allow and deny": (
            {"chains": [chain_entry(pool_filter={"allow_tokens": [WETH], "deny_tokens": [WETH]})]},
            f"deny_tokens: {WETH} is also in allow_tokens",
        ),
        "not a mapping": (["chains"], "configuration must be a mapping"),
    }
    for name, (data, message) in cases.items():
        with pytest.raises(ValidationError) as err:
            services.config_apply(data)
        assert message in " ".join(err.value.messages), name
    assert_nothing_written()


@pytest.mark.django_db
def test_discover_and_the_flat_form() -> None:
    services.config_apply({"chains": [chain_entry(tokens="discover")]})
    assert PoolFilter.objects.get().discover_tokens
    counts = services.config_apply(
        {"tokens": [{"chain_id": 1, "address": "0x" + "ab" * 20, "symbol": "AB", "decimals": 18}]}
    )
    assert counts["tokens"] == 1 and PoolFilter.objects.get().discover_tokens, "the flat form only adds tokens"
    assert config_schema.parse({"chains": []}).chains == []


@pytest.mark.django_db
def test_the_path_stage_and_the_scorer_follow_the_strategy_in_force(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import runtime
    from workers.tasks import ml

    monkeypatch.setattr(runtime.strategies, "ttl", 0.0)
    services.config_apply({"chains": [chain_entry()]})
    runtime.reset()
    try:
        first = runtime.path_stage(1)
        assert first.engine.max_hops == 2
        assert first.engine.base_tokens == (WETH, USDC)
        assert runtime.path_stage(1) is first, "the same version keeps its stage (and its state)"
        assert (ml.scorer(1).margin, ml.scorer(1).max_sends) == (Fraction(5, 4), 5)

        services.config_apply({"chains": [chain_entry(strategy={"max_hops": 4, "margin": "1.1"})]})
        second = runtime.path_stage(1)
        assert second is not first and second.engine.max_hops == 4
        assert second.engine.base_tokens == (WETH,), "no start tokens: the chain's WETH"
        assert (ml.scorer(1).margin, ml.scorer(1).max_sends) == (Fraction(11, 10), MAX_SENDS_PER_BLOCK)
    finally:
        runtime.reset()


@pytest.mark.django_db
def test_the_strategy_is_read_once_per_ttl_by_the_path_ml_and_execute_stages(
    monkeypatch: pytest.MonkeyPatch, django_assert_num_queries: Any
) -> None:
    """Not a database round trip per block in each stage: the strategy in force is read once
    and shared by the path stage, the scorer and the runner until ``STRATEGY_TTL_S`` has
    passed; then the next read sees an edit."""
    from workers import runtime
    from workers.tasks import ml

    import types

    from workers import kept

    clock = [1000.0]
    monkeypatch.setattr(kept, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(runtime, "_build_runner", lambda chain_id, caps, fee_cap: (chain_id, dict(caps)))
    services.config_apply({"chains": [chain_entry()]})
    runtime.reset()
    try:
        first = runtime.path_stage(1)
        with django_assert_num_queries(0):
            for _ in range(5):
                assert runtime.path_stage(1) is first
                assert ml.scorer(1).margin == Fraction(5, 4)
                runtime.runner(1)
        services.config_apply({"chains": [chain_entry(strategy={"max_hops": 4, "margin": "1.1"})]})
        assert ml.scorer(1).margin == Fraction(5, 4), "within the TTL: the strategy read before"
        clock[0] += runtime.STRATEGY_TTL_S
        with django_assert_num_queries(1):
            assert ml.scorer(1).margin == Fraction(11, 10)
            assert runtime.runner(1) == (1, {})
        assert runtime.path_stage(1).engine.max_hops == 4
    finally:
        runtime.reset()


@pytest.mark.django_db
def test_the_strategys_limits_reach_the_execution_runner_without_a_restart(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import runtime

    monkeypatch.setattr(runtime.strategies, "ttl", 0.0)
    monkeypatch.setenv("ARBBOT_MAX_FEE_PER_GAS_WEI", str(300 * 10**9))
    services.config_apply({"chains": [chain_entry()]})
    runtime.reset()
    try:
        first = runtime.runner(1)
        assert runtime.runner(1) is first, "the same version keeps its runner"
        assert first.fee_policy.max_fee_per_gas_wei == 300 * 10**9
        services.config_apply({"chains": [chain_entry(strategy={
            "max_amount_in": {USDC: "5000"}, "max_fee_per_gas_wei": str(200 * 10**9),
        })]})
        second = runtime.runner(1)
        assert second is not first
        assert second.limits.max_amount_in[USDC.lower()] == 5000
        assert second.fee_policy.max_fee_per_gas_wei == 200 * 10**9  # the tighter of the two caps
    finally:
        runtime.reset()
