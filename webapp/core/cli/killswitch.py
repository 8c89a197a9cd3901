"""``arbbot killswitch on|off|status``: the fleet's kill switch (``HotState.fleet``). On
stops every send within a second (the execute stage re-reads it right before signing)."""

from __future__ import annotations

from typing import Any, Callable


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("killswitch", help="stop or allow every send of the fleet")
    p.add_argument("state", choices=["on", "off", "status"], help="on: stop sending; off: allow; status: show")
    p.set_defaults(handler=run)


def run(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from webapp.core import services

    fleet = services.fleet_hotstate()
    if opts["state"] == "on":
        fleet.set_kill_switch(True)
    elif opts["state"] == "off":
        fleet.set_kill_switch(False)
    engaged = fleet.kill_switch_engaged()
    out(f"kill switch: {'ON (no sends)' if engaged else 'off'}")
    return 0
