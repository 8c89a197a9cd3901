"""A synthetic, seeded market for the learned scorer's tests and benchmark (no chain): the
rule must lose in it: rivals always take the gaps of a few pools,
so cycles through them revert (gas paid) whatever their predicted margin; elsewhere a
bigger margin survives more often (a smaller one goes stale). Optionally rivals move a few
``shaved`` pools part-way first: a cycle through one still succeeds, but the re-sized trade
realises only ``SHAVED_SHARE`` of the predicted net profit (what the regressor learns). Every block's features are
computed as the ml stage computes them (``features.matrix`` with the outcomes known by
then), so the dataset is what the fleet would have recorded."""

from __future__ import annotations

import random

import numpy as np

from arbbot.scoring.features import FEATURES, Outcome, OutcomeHistory, matrix, profit_share
from arbbot.scoring.model import Dataset
from arbbot.scoring.rule import RuleScorer
from arbbot.types import Opportunity

WETH = "0x" + "ee" * 20
H = "0x" + "00" * 32
GAS = 200_000
GAS_PRICE = 10**9  # 1 gwei: gas cost 2e14 wei
SHAVED_SHARE = 0.25


def pool(i: int) -> str:
    return "0x" + f"{i:040x}"


def make_opp(block: int, a: int, b: int, profit: int, *, observed_at: float = 0.0) -> Opportunity:
    return Opportunity(
        chain_id=31337, block_number=block, block_hash=H, path_id=f"p{a}-{b}", pools=(pool(a), pool(b)),
        tokens=(WETH, "0x" + "11" * 20, WETH), amount_in=10**19, amount_out=10**19 + profit,
        gas_estimate=GAS, gas_price_wei=GAS_PRICE, gas_cost=GAS * GAS_PRICE, hop_kinds=("v2", "v2"),
        observed_at=observed_at, profit_native=profit,
    )


def market(
    seed: int, *, blocks: int = 400, n_pools: int = 24, watched: tuple[int, ...] = (0, 1, 2), per_block: int = 4,
    min_lag: int = 2, shaved: tuple[int, ...] = (),
) -> tuple[Dataset, list[tuple[Opportunity, np.ndarray, Outcome]]]:
    """The labelled dataset and, per row, the opportunity, its features and its outcome."""
    rng = random.Random(seed)
    rule = RuleScorer(margin=1.5)
    outcomes: list[Outcome] = []
    rows: list[tuple[Opportunity, np.ndarray, Outcome]] = []
    values, rule_exec = [], []
    for block in range(1000, 1000 + blocks):
        opps = []
        for _ in range(per_block):
            a, b = rng.sample(range(n_pools), 2)
            margin = rng.uniform(1.6, 8.0)
            opps.append(make_opp(block, a, b, int(margin * GAS * GAS_PRICE), observed_at=1e9 + block))
        X = matrix(opps, OutcomeHistory(outcomes, as_of=block), now=1e9 + block + rng.uniform(0.05, 0.3))
        for o, x in zip(opps, X):
            gas = o.gas_cost_native
            margin = (o.profit_native or 0) / gas
            if any(int(p, 16) in watched for p in o.pools):
                kind = "reverted" if rng.random() < 0.95 else "success"
            else:
                kind = "success" if rng.random() < 1 - 0.9 * np.exp(-(margin - 1.0) / 1.5) else "stale"
            won = (o.net_profit_native or 0) * (SHAVED_SHARE if any(int(p, 16) in shaved for p in o.pools) else 1)
            value = {"success": won, "reverted": -gas, "stale": 0}[kind]
            share = profit_share(won, o.net_profit_native or 0) if kind == "success" else 1.0
            out = Outcome(block, o.path_id, o.pools, kind, share)  # type: ignore[arg-type]
            outcomes.append(out)
            rows.append((o, x, out))
            values.append(float(value))
            rule_exec.append(rule.score(o).decision == "execute")
    data = Dataset(
        X=np.array([r[1] for r in rows]),
        y=np.array([r[2].kind == "success" for r in rows]),
        value=np.array(values),
        net_native=np.array([float(r[0].net_profit_native or 0) for r in rows]),
        gas_native=np.array([float(r[0].gas_cost_native) for r in rows]),
        rule_execute=np.array(rule_exec),
        block=np.array([r[0].block_number for r in rows]),
        features=FEATURES,
    )
    return data, rows
