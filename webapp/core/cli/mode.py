"""``arbbot mode dry-run|paper|live --chain ID`` and ``arbbot mode status``: how each chain
trades (``Chain.mode``, written by ``services.chain_mode_set``). Nothing trades live
unless someone chose it: ``live`` is refused without ``--yes-live``, and on a chain
without an executor. A chain whose mode is blank trades as the fleet's ``ARBBOT_MODE``
(``dry-run`` unless set)."""

from __future__ import annotations

from typing import Any, Callable

MODES = ("dry-run", "paper", "live")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("mode", help="set or show how each chain trades (dry-run, paper, live)")
    p.add_argument("mode", choices=[*MODES, "status"], help="the mode to set, or status to show every chain's")
    p.add_argument("--chain", type=int, metavar="ID", help="the chain to set (required to set a mode)")
    p.add_argument("--yes-live", action="store_true", help="confirm live: real transactions with real money")
    p.set_defaults(handler=run)


def run(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from django.core.exceptions import ValidationError

    from arbbot.config import get_settings
    from webapp.core import selectors, services
    from webapp.core.cli import CliError
    from webapp.core.models import Chain

    mode, chain_id = opts["mode"], opts.get("chain")
    if mode != "status":
        if chain_id is None:
            raise CliError(f"name the chain to set to {mode}: arbbot mode {mode} --chain ID", code=2)
        if mode == "live" and not opts["yes_live"]:
            raise CliError(
                f"refusing to set chain {chain_id} live without --yes-live: live signs and sends real "
                f"transactions with real money (arbbot mode live --chain {chain_id} --yes-live)",
                code=2,
            )
        try:
            services.chain_mode_set(chain_id, mode, confirm_live=opts["yes_live"])
        except ValidationError as exc:
            raise CliError(" ".join(exc.messages), code=2) from None
    chains = selectors.chains_all() if chain_id is None else []
    if chain_id is not None:
        try:
            chains = [selectors.chain_get(chain_id)]
        except Chain.DoesNotExist:
            raise CliError(f"unknown chain {chain_id}", code=2) from None
    fleet = get_settings().mode
    if not chains:
        out(f"no chains configured (the fleet's mode is {fleet})")
    for chain in chains:
        source = "set on the chain" if chain.mode_from() == "chain" else "the fleet's ARBBOT_MODE"
        out(f"chain {chain.chain_id} ({chain.name}): {chain.mode_in_force(fleet)} ({source})")
    return 0
