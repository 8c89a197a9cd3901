"""What live trading needs, said in one place: the runner refuses a live send without it
(``ExecutionRunner.submit``) and the execute worker says at start, per chain, what mode
it runs and why not live (``workers.runtime.mode_at_start``).

Live needs three things, each chosen by someone: the mode set to ``live`` (the fleet's
``ARBBOT_MODE`` or the chain's own setting; with nothing set the mode is ``dry-run``), a
signing key, and the chain's executor contract address. Without the key or the executor
nothing is sent; every opportunity is dropped with the reason.
"""

from __future__ import annotations

ZERO_ADDRESS = "0x" + "00" * 20
KEY_SOURCES = "ARBBOT_SIGNER_KEY, ARBBOT_SIGNER_KEY_FILE or ARBBOT_SIGNER_KEYSTORE_FILE"


def live_missing(*, has_signer: bool, executor: str | None, chain_id: int) -> list[str]:
    """What live trading on ``chain_id`` lacks (empty: nothing), each naming its fix."""
    missing = []
    if not has_signer:
        missing.append(f"no signing key (set {KEY_SOURCES})")
    if not executor or executor.lower() == ZERO_ADDRESS:
        missing.append(
            f"no executor address on chain {chain_id} (deploy one: manage.py arbbot executor deploy --chain {chain_id})"
        )
    return missing


def live_refusal(*, has_signer: bool, executor: str | None, chain_id: int) -> str | None:
    """The reason a live send is refused, or None when live has what it needs."""
    missing = live_missing(has_signer=has_signer, executor=executor, chain_id=chain_id)
    return f"live mode refused, nothing sent: {'; '.join(missing)}" if missing else None
