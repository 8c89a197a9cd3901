"""``python manage.py devnet up|down|status|simulate``: the embedded devnet, plus recording
its deployment as Chain/Dex/Token/Pool rows so the fleet trades on it."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from arbbot.errors import ArbbotError


class Command(BaseCommand):
    help = "Embedded devnet: anvil + genuine Uniswap contracts + market simulator"

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["up", "down", "status", "simulate", "register"])
        parser.add_argument("--dir", default=None, help="devnet state directory (default .devnet/)")
        parser.add_argument("--port", type=int, default=8545)
        parser.add_argument("--block-time", type=float, default=1.0, help="seconds per block; 0 = automine")
        parser.add_argument("--no-v3", action="store_true", help="skip the Uniswap V3 pools")
        parser.add_argument("--seconds", type=float, default=None, help="simulate: stop after this long")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--swaps-per-block", type=int, default=4)
        parser.add_argument(
            "--competitors", default="",
            help="rival bots, LATENCY_S:N_POOLS[,...] (e.g. 0.05:4): each closes the gaps of N watched V2 "
                 "pools first, more often the faster it is (off by default)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        from arbbot.devnet import lifecycle
        from arbbot.devnet.record import load_deployment

        action = opts["action"]
        try:
            if action == "up":
                dep = lifecycle.up(
                    port=opts["port"], directory=opts["dir"], block_time_s=opts["block_time"] or None,
                    v3=not opts["no_v3"],
                    progress=self.stdout.write,
                )
                self._register(dep.to_json())
            elif action == "register":
                self._register(load_deployment(opts["dir"]).to_json())
            elif action == "down":
                lifecycle.down(directory=opts["dir"], progress=self.stdout.write)
            elif action == "status":
                self.stdout.write(json.dumps(lifecycle.status(directory=opts["dir"]), indent=2))
            elif action == "simulate":
                from arbbot.devnet.simulator import parse_competitors, simulate

                rivals = parse_competitors(opts["competitors"], load_deployment(opts["dir"]), opts["seed"])
                try:
                    simulate(None, seconds=opts["seconds"], seed=opts["seed"], directory=opts["dir"],
                             swaps_per_block=opts["swaps_per_block"], competitors=rivals)
                except KeyboardInterrupt:
                    self.stdout.write("simulator stopped")
        except ArbbotError as exc:
            raise CommandError(str(exc)) from exc

    def _register(self, deployment: dict[str, Any]) -> None:
        from webapp.core import services

        from django.core.exceptions import ValidationError

        try:
            registered = services.chain_register_deployment(deployment)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        chain = registered.chain
        if registered.history_removed:
            self.stdout.write(
                f"chain {chain.chain_id} is a new devnet (genesis {chain.genesis_hash[:10]}…): removed "
                f"{registered.history_removed} opportunity and execution rows of the devnet it replaces"
            )
        self.stdout.write(
            f"recorded chain {chain.chain_id} with {chain.dexes.count()} dexes, {chain.tokens.count()} tokens, "
            f"{chain.pools.count()} pools in the database"
        )
