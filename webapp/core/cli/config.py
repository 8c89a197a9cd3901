"""``arbbot config apply FILE.yaml`` / ``arbbot config show [--chain ID]``: load the
configuration (chains, DEXes, tokens, pool filters, strategy, cross-chain pairs; the schema
is ``webapp.core.config_schema``) and print the one in force.

``apply`` writes through ``services.config_apply`` in one transaction: a bad entry is named
(``chains[0] (ethereum).dexes[2] (sushiswap): init_code_hash: not 32 bytes of hex``), exit
code 2, nothing written. A chain set to ``live`` by the file needs ``--yes-live``. Each
chain of the file is first checked on its own RPC (Multicall3 has code, each factory answers
and its init-code hash reproduces one of its pools, the executor is arbbot's and owned as
``executor_owner`` says), and so is each cross-chain pair of its ``xchain`` section (router,
tokens and bridge have code, the traded and the WETH/quote pools exist); ``--offline``
skips that, and a chain whose RPC cannot be reached is an error that suggests it.
``show`` prints YAML with every URL cut to scheme and host (RPC and relay URLs often carry
API keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("config", help="apply a configuration file, or show the one in force")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    apply = actions.add_parser("apply", help="check and apply a YAML/JSON configuration file (all or nothing)")
    apply.add_argument("file", help="the configuration file (see examples/*.yaml)")
    apply.add_argument(
        "--yes-live", action="store_true",
        help="confirm that a chain the file sets to mode live may send real transactions",
    )
    apply.add_argument(
        "--offline", action="store_true",
        help="skip the on-chain checks (Multicall3, factories, init-code hashes, executor); by default each "
             "chain of the file is checked on its RPC first",
    )
    apply.set_defaults(handler=run_apply)
    show = actions.add_parser("show", help="print the configuration in force as YAML (no secrets)")
    show.add_argument("--chain", type=int, metavar="ID", help="only this chain")
    show.set_defaults(handler=run_show)


def read_yaml(path: Path) -> Any:
    """The YAML (or JSON) document in ``path``; ``CliError`` (exit code 2) naming the problem."""
    import yaml

    from webapp.core.cli import CliError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {exc.strerror if isinstance(exc, OSError) else exc}", code=2) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CliError(f"{path}: not valid YAML{where}: {problem}", code=2) from None
    return data


def run_apply(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from django.core.exceptions import ValidationError

    from webapp.core import services
    from webapp.core.cli import CliError

    path = Path(opts["file"])
    data = read_yaml(path)
    try:
        counts = services.config_apply(data, allow_live=opts["yes_live"], source=f"config apply {path.name}",
                                       onchain=not opts.get("offline"))
    except ValidationError as exc:
        raise CliError(f"{path}: {' '.join(exc.messages)}", code=2) from None
    out(
        f"applied {path}: {counts['chains']} chain(s), {counts['dexes']} dex(es), {counts['tokens']} token(s), "
        f"{counts['pool_filters']} pool filter(s), {counts['strategies']} new strategy version(s)"
        + (f", {counts['xchain_pairs']} cross-chain pair(s)" if "xchain_pairs" in counts else "")
    )
    return 0


def run_show(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    import yaml

    from arbbot.config import get_settings
    from webapp.core import selectors
    from webapp.core.cli import CliError
    from webapp.core.models import Chain

    try:
        config = selectors.config_effective(opts.get("chain"), fleet_mode=get_settings().mode)
    except Chain.DoesNotExist:
        raise CliError(f"unknown chain {opts['chain']}", code=2) from None
    out("# the configuration in force; URLs show scheme and host only")
    out(yaml.safe_dump(config, sort_keys=False, default_flow_style=False, allow_unicode=True).rstrip())
    return 0
