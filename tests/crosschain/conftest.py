"""Two real anvil chains joined by the DevBridge, deployed once for the package (automine), and
each test's changes to both chains rolled back afterwards (``evm_snapshot``/``evm_revert``).
``configure`` applies the devnet's cross-chain configuration through ``config apply``'s
path and reads the pair back from the database, as the bridge queue does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from arbbot.chain.rpc import RpcClient
from arbbot.crosschain.engine import Pair, chains_for
from arbbot.crosschain.relayer import Relayer, RelayerConfig
from arbbot.crosschain.saga import Advance, Chains, SagaStore, advance
from arbbot.devnet.anvil import Anvil
from arbbot.devnet.scenarios import mine, revert_to, snapshot
from arbbot.devnet.twochain import TwoChain, chain_records, deployed_two_chains, read_xchain_key, xchain_config


@dataclass
class TwoChains:
    a: Anvil
    b: Anvil
    two: TwoChain
    directory: Path

    @property
    def rpcs(self) -> dict[int, RpcClient]:
        return {self.two.a.chain_id: self.a.rpc(), self.two.b.chain_id: self.b.rpc()}

    def relayer(self, **config: float) -> Relayer:
        r = Relayer(self.rpcs, self.two.bridges, self.two.tokens, self.two.relayer,
                    RelayerConfig(**config))  # type: ignore[arg-type]
        r.configure()
        return r


@pytest.fixture(scope="package")
def two_chains_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoChains]:
    directory = tmp_path_factory.mktemp("twochain")
    with deployed_two_chains(directory) as (a, b, two):
        yield TwoChains(a, b, two, directory)


@pytest.fixture
def chains2(two_chains_module: TwoChains) -> Iterator[TwoChains]:
    snaps = {c: snapshot(rpc) for c, rpc in two_chains_module.rpcs.items()}
    yield two_chains_module
    for c, rpc in two_chains_module.rpcs.items():
        revert_to(rpc, snaps[c])


def configure(c: TwoChains, **settings: Any) -> tuple[Pair, Chains]:
    """Register both chains and apply the devnet's ``xchain`` section (``settings``: those of
    ``twochain.xchain_config``); the pair as ``selectors.xchain_pairs`` reads it, and its
    ``Chains`` with the devnet's inventory wallet."""
    from webapp.core import selectors, services

    # the chains' pools and tokens are the single-chain pipeline's, not read here: left out (faster)
    records = [{**r, "pools": [], "tokens": []} for r in chain_records(c.two)]
    services.xchain_devnet_apply(records, xchain_config(c.two, **settings))
    (pair,) = selectors.xchain_pairs()
    return pair, chains_for(pair, read_xchain_key(c.directory))


def drive(store: SagaStore, chains: Chains, saga_id: int, relayer: Relayer | None = None,
          rounds: int = 60) -> Advance:
    """Step a saga to a final state; between steps, one block on each chain and a relayer
    pass (the relayer is a process of its own in production: here it is stepped)."""
    result = advance(store, chains, saga_id)
    for _ in range(rounds):
        if result.final:
            return result
        for rpc in chains.rpcs.values():
            mine(rpc, 1)
        if relayer is not None:
            relayer.poll_once()
        result = advance(store, chains, saga_id)
    raise AssertionError(f"saga {saga_id} not final after {rounds} rounds: {result.state}")
