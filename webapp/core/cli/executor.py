"""``arbbot executor deploy|status|fund|withdraw``: the chain's executor contract (ArbExecutor).

- ``deploy --chain ID [--owner 0xCOLD] [--yes] [--force] [--resume 0xADDR]``: one raw CREATE
  transaction signed with the configured signer key (``ARBBOT_SIGNER_KEY`` / ``_FILE``), which
  becomes the contract's hot executor; the owner (default: the signer) and every DEX of the
  chain (factory, init-code hash) are set by the constructor. Then the runtime code and the
  setup are checked on-chain and the address is recorded in the chain's configuration.
  ``--resume`` finishes a deployment whose transaction was sent (checks, missing
  registrations when the key is the owner, the record).
- ``status --chain ID [--address 0x..]``: one ``name: value`` line per fact.
- ``fund --chain ID TOKEN AMOUNT``: the signer transfers the token to the executor.
- ``withdraw --chain ID TOKEN AMOUNT|all [--to ADDR]``: the owner's key (``ARBBOT_OWNER_KEY``
  / ``_FILE``, else the signer key) sends ``withdraw``; when that key is not the owner (a cold
  owner) nothing is sent and the calldata to sign offline is printed.

On a chain that is not a devnet, anything that sends asks for ``--yes`` after printing its
worst-case gas cost. Exit codes: 2 bad input (unknown chain or token, bad amount or
address), 1 refused or failed (nothing sent unless the output says so). The mode and the
kill switch do not apply: these are not trades. The logic lives in
``arbbot.execution.executor_admin``; this module reads rows, prints and records.
"""

from __future__ import annotations

from typing import Any, Callable

from arbbot.chain.tx import TxFailed
from arbbot.execution import executor_admin as admin
from webapp.core.cli import CliError

Out = Callable[[str], None]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("executor", help="deploy and operate the chain's executor contract")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    d = actions.add_parser("deploy", help="deploy ArbExecutor with the configured key (raw signed transaction)")
    d.add_argument("--chain", type=int, required=True, help="chain id (a configured chain)")
    d.add_argument("--owner", help="cold owner address (default: the signer key's address)")
    d.add_argument("--yes", action="store_true", help="send on a chain that is not a devnet")
    d.add_argument("--force", action="store_true", help="deploy even though the chain has a live executor")
    d.add_argument("--resume", metavar="0xADDR", help="finish a deployment already sent: check, register, record")
    d.add_argument("--wait", type=float, default=admin.RECEIPT_TIMEOUT_S, metavar="SECONDS",
                   help="how long to wait for each receipt (default %(default)s)")
    d.set_defaults(handler=deploy)

    s = actions.add_parser("status", help="the executor's code, roles, registry and balances")
    s.add_argument("--chain", type=int, required=True)
    s.add_argument("--address", help="inspect this address instead of the chain's recorded executor")
    s.set_defaults(handler=status)

    f = actions.add_parser("fund", help="transfer a token from the signer to the executor")
    f.add_argument("--chain", type=int, required=True)
    f.add_argument("token", help="symbol or address of a token of the chain")
    f.add_argument("amount", help="in token units, e.g. 12.5 (at most the token's decimals)")
    f.add_argument("--yes", action="store_true", help="send on a chain that is not a devnet")
    f.set_defaults(handler=fund)

    w = actions.add_parser("withdraw", help="the owner moves a token out of the executor")
    w.add_argument("--chain", type=int, required=True)
    w.add_argument("token", help="symbol or address of a token of the chain, or 'native'")
    w.add_argument("amount", help="in token units, or 'all'")
    w.add_argument("--to", help="recipient (default: the owner)")
    w.add_argument("--yes", action="store_true", help="send on a chain that is not a devnet")
    w.set_defaults(handler=withdraw)


# --------------------------------------------------------------------------- shared


def _chain(opts: dict[str, Any]) -> Any:
    from webapp.core import selectors
    from webapp.core.models import Chain

    try:
        return selectors.chain_get(opts["chain"])
    except Chain.DoesNotExist:
        raise CliError(f"unknown chain {opts['chain']}: no such chain configured (see `arbbot config show`)",
                       2) from None


def _connect(chain: Any) -> Any:
    try:
        return admin.connect(chain.rpc_url_list(), chain.chain_id)
    except admin.AdminError as exc:
        raise CliError(str(exc)) from None


def _wallet(key: str, what: str, names: str) -> Any:
    if not key:
        raise CliError(f"no {what} configured ({names})")
    try:
        return admin.Wallet(key)
    except admin.AdminError as exc:
        raise CliError(f"{what}: {exc}") from None


def _settings() -> Any:
    from arbbot.config import get_settings
    from arbbot.errors import ConfigError

    try:
        return get_settings()
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}") from None


def _signer() -> Any:
    return _wallet(_settings().signer_key, "signing key",
                   "ARBBOT_SIGNER_KEY, ARBBOT_SIGNER_KEY_FILE or ARBBOT_SIGNER_KEYSTORE_FILE")


def _owner_key() -> str:
    """ARBBOT_OWNER_KEY, else the file at ARBBOT_OWNER_KEY_FILE, else a devnet's owner.key."""
    from arbbot.config import _read_secret
    from arbbot.errors import ConfigError

    try:
        return _read_secret("ARBBOT_OWNER_KEY", _settings().devnet_dir / "owner.key")
    except ConfigError as exc:
        raise CliError(f"configuration: {exc}") from None


def _policy(chain_id: int) -> Any:
    from arbbot.execution.fees import FeePolicy

    s = _settings()
    return FeePolicy(
        max_fee_per_gas_wei=s.max_fee_cap(chain_id),
        inclusion_blocks=s.fee_inclusion_blocks,
        priority_percentile=s.fee_priority_percentile,
        min_priority_fee_wei=s.min_priority_fee_wei,
    )


def _address(text: str, what: str) -> str:
    try:
        return str(admin.norm(text, what))
    except admin.AdminError as exc:
        raise CliError(str(exc), 2) from None


def _plan(rpc: Any, sender: str, *, to: str | None, data: str, chain: Any, what: str) -> Any:
    try:
        return admin.plan_tx(rpc, sender, to=to, data=data, policy=_policy(chain.chain_id), what=what)
    except admin.AdminError as exc:
        raise CliError(f"{exc}; nothing sent") from None


def _confirmed(chain: Any, opts: dict[str, Any], out: Out) -> bool:
    if chain.is_devnet or opts.get("yes"):
        return True
    out(f"not sent: {chain.name} ({chain.chain_id}) is not a devnet; re-run with --yes to send")
    return False


def _send(rpc: Any, wallet: Any, plan: Any, chain: Any, out: Out, opts: dict[str, Any]) -> dict[str, Any]:
    wait = opts.get("wait") or admin.RECEIPT_TIMEOUT_S
    try:
        receipt: dict[str, Any] = admin.send_plan(rpc, wallet, plan, chain.chain_id, progress=out, timeout_s=wait)
    except admin.Unconfirmed as exc:
        raise CliError(f"{exc}: it may still be mined; check it before sending anything again") from None
    except TxFailed as exc:
        raise CliError(f"{exc}; nothing changed but the gas") from None
    except admin.AdminError as exc:
        raise CliError(f"{exc}; nothing sent") from None
    return receipt


def _tokens(chain_id: int) -> list[Any]:
    from webapp.core import selectors

    return selectors.chain_tokens(chain_id)


def _token(chain: Any, text: str, *, allow_native: bool = False) -> tuple[str, str, int]:
    """(address, symbol, decimals) of a token of the chain named by symbol or address."""
    if allow_native and text.lower() == "native":
        return admin.ZERO_ADDRESS, "native", 18
    tokens = _tokens(chain.chain_id)
    if text.startswith("0x"):
        addr = _address(text, "token")
        matches = [t for t in tokens if t.address == addr]
    else:
        matches = [t for t in tokens if t.symbol == text] or [t for t in tokens if t.symbol.lower() == text.lower()]
    if not matches:
        known = ", ".join(t.symbol or t.address for t in tokens) or "none"
        raise CliError(f"unknown token {text!r} on chain {chain.chain_id} (known: {known})", 2)
    if len(matches) > 1:
        raise CliError(f"token {text!r} is ambiguous on chain {chain.chain_id}: "
                       f"{', '.join(t.address for t in matches)}; give the address", 2)
    t = matches[0]
    if t.decimals is None:
        raise CliError(f"token {t.symbol or t.address} ({t.address}) has no decimals recorded: "
                       "set them in the configuration first", 2)
    return t.address, t.symbol or t.address, int(t.decimals)


def _executor_address(chain: Any, override: str | None = None) -> str:
    if override:
        return _address(override, "executor address")
    if not chain.executor:
        raise CliError(f"chain {chain.chain_id} has no executor recorded: run "
                       f"`arbbot executor deploy --chain {chain.chain_id}`")
    return str(chain.executor)


def _require_ours(rpc: Any, address: str) -> Any:
    check = admin.check_code(rpc, address)
    if not check.has_code:
        raise CliError(f"no contract at {address}")
    if not check.matches:
        raise CliError(f"the code at {address} is not the compiled ArbExecutor (code hash {check.code_hash})")
    return check


def _factories(rpc: Any, chain: Any) -> list[Any]:
    from webapp.core import selectors

    entries = []
    for dex, pool in selectors.chain_dexes_with_sample(chain.chain_id):
        sample = None if pool is None else admin.PoolSample(pool.address, pool.token0.address, pool.token1.address,
                                                        int(pool.fee_pips))
        entries.append(admin.DexEntry(dex.name, dex.kind, dex.factory, dex.init_code_hash, sample))
    try:
        return list(admin.resolve_factories(rpc, entries))
    except admin.AdminError as exc:
        raise CliError(f"chain {chain.chain_id}: {exc}; nothing sent") from None


def _resume_hint(chain: Any, address: str, owner: str | None) -> str:
    owner_arg = f" --owner {owner}" if owner else ""
    return f"python manage.py arbbot executor deploy --chain {chain.chain_id}{owner_arg} --resume {address}"


# --------------------------------------------------------------------------- deploy


def deploy(opts: dict[str, Any], out: Out) -> int:
    chain = _chain(opts)
    wallet = _signer()
    cold = _address(opts["owner"], "--owner") if opts.get("owner") else None
    owner = cold or wallet.address
    if owner == admin.ZERO_ADDRESS:
        raise CliError("--owner is the zero address: nobody could ever withdraw", 2)
    resume = _address(opts["resume"], "--resume") if opts.get("resume") else None
    rpc = _connect(chain)
    if not chain.weth:
        raise CliError(f"chain {chain.chain_id} has no WETH (wrapped native token) configured")
    if not admin.code_at(rpc, chain.weth):
        raise CliError(f"chain {chain.chain_id}: no contract at its WETH address {chain.weth}")
    if chain.executor and chain.executor != resume and admin.code_at(rpc, chain.executor) and not opts.get("force"):
        raise CliError(f"chain {chain.chain_id} already has an executor at {chain.executor} (see `executor "
                       "status`); --force deploys another one and records it instead")
    factories = _factories(rpc, chain)
    out(f"chain: {chain.name} ({chain.chain_id})")
    out(f"signer (deployer, hot executor): {wallet.address}")
    out(f"owner: {owner}{'' if cold else ' (the signer itself: pass --owner for a cold owner)'}")
    out(f"weth: {chain.weth}")
    for f in factories:
        out(f"factory {f.name}: {f.kind} {f.factory} init-code hash 0x{f.init_code_hash.hex()}")
    if resume:
        return _finish(rpc, chain, resume, cold, wallet, factories, opts, out)

    data = admin.deploy_data(owner, chain.weth, [wallet.address], factories)
    plan = _plan(rpc, wallet.address, to=None, data=data, chain=chain, what="deploy ArbExecutor")
    address = plan.contract_address
    out(plan.describe())
    out(f"the contract will be at {address} (nonce {plan.nonce})")
    if not _confirmed(chain, opts, out):
        return 1
    try:
        receipt = admin.send_plan(rpc, wallet, plan, chain.chain_id, progress=out, timeout_s=opts["wait"])
    except admin.Unconfirmed as exc:
        raise CliError(f"{exc}. Once it is mined, finish with: {_resume_hint(chain, address, cold)}") from None
    except (admin.AdminError, TxFailed) as exc:
        raise CliError(f"{exc}; nothing deployed, nothing recorded") from None
    mined = str(receipt.get("contractAddress") or "").lower()
    if mined != address:
        raise CliError(f"deployed at {mined}, expected {address}: check it with `executor status --address`")
    return _finish(rpc, chain, address, cold, wallet, factories, opts, out)


def _finish(rpc: Any, chain: Any, address: str, cold: str | None, wallet: Any, factories: list[Any],
            opts: dict[str, Any], out: Out) -> int:
    """After the contract exists: check its code and setup, complete what the owner key can,
    record it. Any failure says what is done and how to resume."""
    from webapp.core import services

    hint = _resume_hint(chain, address, cold)
    check = admin.check_code(rpc, address)
    if not check.has_code:
        raise CliError(f"no contract at {address} (not mined yet?): resume later with: {hint}")
    if not check.matches:
        raise CliError(f"the code at {address} is not the compiled ArbExecutor (code hash {check.code_hash}): "
                       "not recorded")
    if check.weth != chain.weth:
        raise CliError(f"the executor at {address} uses WETH {check.weth}, the chain's is {chain.weth}: not recorded")
    out(f"code: matches the compiled ArbExecutor (code hash {check.code_hash})")
    setup = admin.read_setup(rpc, address, wallet.address, factories)
    if cold is not None and setup.owner != cold:
        raise CliError(f"the executor at {address} is owned by {setup.owner}, not {cold}: not recorded")
    fixes = admin.factory_fix_calls(setup, wallet.address)
    if fixes:
        if setup.owner != wallet.address:
            out(f"missing on-chain, for the owner {setup.owner} to send to {address} (chain {chain.chain_id}):")
            for what, data in fixes:
                out(f"  {what}: calldata {data}")
            raise CliError(f"the executor at {address} is deployed but not fully set up; once the owner has "
                           f"sent the calls above, resume with: {hint}")
        for what, data in fixes:
            plan = _plan(rpc, wallet.address, to=address, data=data, chain=chain, what=what)
            out(plan.describe())
            if not _confirmed(chain, opts, out):
                out(f"deployed at {address}, not yet set up or recorded; resume with: {hint} --yes")
                return 1
            try:
                _send(rpc, wallet, plan, chain, out, opts)
            except CliError as exc:
                raise CliError(f"{exc}. Deployed at {address}, not fully set up; resume with: {hint}") from None
        setup = admin.read_setup(rpc, address, wallet.address, factories)
    problems = setup.problems(owner=cold, executor=wallet.address)
    if problems:
        raise CliError(f"the executor at {address}: {'; '.join(problems)}; not recorded. Resume with: {hint}")
    out(f"owner: {setup.owner}; executor: {wallet.address}; {len(factories)} factories registered")
    try:
        services.chain_set_executor(chain.chain_id, address)
    except Exception as exc:  # noqa: BLE001 - the database: say what is done and how to finish
        raise CliError(f"deployed and set up at {address}, but not recorded ({type(exc).__name__}: {exc}); "
                       f"resume with: {hint}") from None
    out(f"recorded as chain {chain.chain_id}'s executor")
    out(f"executor: {address}")
    return 0


# --------------------------------------------------------------------------- status


def status(opts: dict[str, Any], out: Out) -> int:
    chain = _chain(opts)
    address = _executor_address(chain, opts.get("address"))
    signer = _signer()
    rpc = _connect(chain)
    check = admin.check_code(rpc, address)
    out(f"chain: {chain.name} ({chain.chain_id})")
    out(f"executor: {address}")
    out(f"has code: {'yes' if check.has_code else 'no'}")
    out(f"code hash: {check.code_hash or 'none'}")
    out(f"code matches compiled: {'yes' if check.matches else 'no'}")
    out(f"signer: {signer.address}")
    native = admin.native_balance(rpc, signer.address)
    if not check.matches:
        out(f"signer native balance: {admin.format_units(native, 18)} ({native} wei)")
        return 1
    out(f"weth: {check.weth}{'' if check.weth == chain.weth else f' (the chain says {chain.weth})'}")
    from webapp.core import selectors

    entries = []
    for dex in selectors.chain_dexes(chain.chain_id):
        init = dex.init_code_hash.strip().removeprefix("0x")
        expected = bytes.fromhex(init) if len(init) == 64 else admin.GENUINE_INIT_CODE_HASH.get(dex.kind, bytes(32))
        entries.append(admin.FactoryEntry(dex.name, dex.kind, dex.factory, expected))
    setup = admin.read_setup(rpc, address, signer.address, entries)
    out(f"owner: {setup.owner}")
    out(f"pending owner: {setup.pending_owner if setup.pending_owner != admin.ZERO_ADDRESS else 'none'}")
    out(f"signer is executor: {'yes' if setup.executor_ok else 'no'}")
    out(f"signer is owner: {'yes' if setup.owner == signer.address else 'no'}")
    out(f"paused: {'yes' if setup.paused else 'no'}")
    for f, have in setup.factories:
        if have == bytes(32):
            state = "not registered"
        else:
            state = f"registered 0x{have.hex()}" + ("" if have == f.init_code_hash else " (not the expected hash)")
        out(f"factory {f.name} ({f.kind} {f.factory}): {state}")
    for t in _tokens(chain.chain_id):
        bal = admin.token_balance(rpc, t.address, address)
        out(f"balance {t.symbol or t.address}: {admin.format_units(bal, t.decimals)} ({bal} base units)")
    held = admin.native_balance(rpc, address)
    if held:
        out(f"balance native: {admin.format_units(held, 18)} ({held} wei)")
    out(f"signer native balance: {admin.format_units(native, 18)} ({native} wei)")
    return 0


# --------------------------------------------------------------------------- fund, withdraw


def fund(opts: dict[str, Any], out: Out) -> int:
    chain = _chain(opts)
    token, symbol, decimals = _token(chain, opts["token"])
    amount = _amount(opts["amount"], decimals, symbol)
    wallet = _signer()
    address = _executor_address(chain)
    rpc = _connect(chain)
    _require_ours(rpc, address)
    have = admin.token_balance(rpc, token, wallet.address)
    if have < amount:
        raise CliError(f"the signer {wallet.address} holds {admin.format_units(have, decimals)} {symbol}, "
                       f"less than {admin.format_units(amount, decimals)}; nothing sent")
    before = admin.token_balance(rpc, token, address)
    plan = _plan(rpc, wallet.address, to=token, data=admin.transfer_data(address, amount), chain=chain,
                 what=f"fund {admin.format_units(amount, decimals)} {symbol} ({amount} base units) to {address}")
    out(plan.describe())
    if not _confirmed(chain, opts, out):
        return 1
    _send(rpc, wallet, plan, chain, out, opts)
    after = admin.token_balance(rpc, token, address)
    out(f"executor balance {symbol}: {admin.format_units(after, decimals)} ({after} base units)")
    if after - before != amount:
        out(f"warning: the executor's balance moved by {after - before}, not {amount} (a fee-on-transfer token?)")
        return 1
    return 0


def withdraw(opts: dict[str, Any], out: Out) -> int:
    chain = _chain(opts)
    token, symbol, decimals = _token(chain, opts["token"], allow_native=True)
    everything = opts["amount"].strip().lower() == "all"
    amount = 0 if everything else _amount(opts["amount"], decimals, symbol)
    to_opt = _address(opts["to"], "--to") if opts.get("to") else None
    address = _executor_address(chain)
    owner_key = _owner_key()
    wallet = _wallet(owner_key, "owner key", "ARBBOT_OWNER_KEY or ARBBOT_OWNER_KEY_FILE") if owner_key else _signer()
    rpc = _connect(chain)
    _require_ours(rpc, address)
    held = admin.native_balance(rpc, address) if token == admin.ZERO_ADDRESS else admin.token_balance(rpc, token, address)
    if everything:
        amount = held
        if amount == 0:
            raise CliError(f"the executor holds no {symbol}: nothing to withdraw")
    elif amount > held:
        raise CliError(f"the executor holds {admin.format_units(held, decimals)} {symbol}, less than "
                       f"{admin.format_units(amount, decimals)}; nothing sent")
    owner = admin.read_setup(rpc, address, wallet.address, []).owner
    to = to_opt or owner
    data = admin.withdraw_data(token, to, amount)
    what = f"withdraw {admin.format_units(amount, decimals)} {symbol} ({amount} base units) to {to}"
    if wallet.address != owner:
        out(f"not sent: the executor's owner is {owner}, the configured key is {wallet.address}")
        out("to sign offline with the owner's key:")
        out(f"  chain id: {chain.chain_id}")
        out(f"  to: {address}")
        out("  value: 0")
        out(f"  data: {data}")
        raise CliError(f"{what}: refused, the configured key is not the owner ({owner})")
    plan = _plan(rpc, wallet.address, to=address, data=data, chain=chain, what=what)
    out(plan.describe())
    if not _confirmed(chain, opts, out):
        return 1
    _send(rpc, wallet, plan, chain, out, opts)
    left = admin.native_balance(rpc, address) if token == admin.ZERO_ADDRESS else admin.token_balance(rpc, token, address)
    out(f"executor balance {symbol}: {admin.format_units(left, decimals)} ({left} base units)")
    return 0


def _amount(text: str, decimals: int, symbol: str) -> int:
    try:
        return int(admin.parse_amount(text, decimals, symbol))
    except admin.AdminError as exc:
        raise CliError(str(exc), 2) from None
