"""``arbbot roles setup|user|token``: the console's roles and logins.

``setup`` creates the groups viewer, operator and admin with their permissions
(``webapp.core.roles``; ``migrate`` does it too). ``user NAME --role ROLE`` creates the
login, or changes its role, and prints a generated password once (``--keep-password``
keeps an existing user's). ``token NAME`` prints the user's API token, creating it if
needed (``Authorization: Token <key>``; ``--rotate`` replaces it)."""

from __future__ import annotations

from typing import Any, Callable

from webapp.core.cli import CliError


def register(subparsers: Any) -> None:
    from webapp.core.roles import ROLES

    p = subparsers.add_parser("roles", help="the console's roles (viewer, operator, admin), logins and API tokens")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    setup = actions.add_parser("setup", help="create or repair the groups viewer, operator, admin")
    setup.set_defaults(handler=run_setup)
    user = actions.add_parser("user", help="create a login with a role (prints a generated password)")
    user.add_argument("name", help="the user name")
    user.add_argument("--role", required=True, choices=list(ROLES), help="the user's only role")
    user.add_argument("--keep-password", action="store_true", help="an existing user keeps their password")
    user.set_defaults(handler=run_user)
    token = actions.add_parser("token", help="print a user's API token (created if missing)")
    token.add_argument("name", help="the user name")
    token.add_argument("--rotate", action="store_true", help="replace the token: the old one stops working")
    token.set_defaults(handler=run_token)


def run_setup(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from webapp.core.roles import roles_setup

    for role, n in roles_setup().items():
        out(f"group {role}: {n} permission(s)")
    return 0


def run_user(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from django.core.exceptions import ValidationError

    from webapp.core import services

    try:
        _, password = services.user_set_role(opts["name"], opts["role"], keep_password=opts["keep_password"])
    except ValidationError as exc:
        raise CliError(" ".join(exc.messages), code=2) from None
    out(f"user {opts['name']}: role {opts['role']}")
    if password is not None:
        out(f"password (shown once): {password}")
    return 0


def run_token(opts: dict[str, Any], out: Callable[[str], None]) -> int:
    from django.core.exceptions import ValidationError

    from webapp.core import services

    try:
        out(services.user_token(opts["name"], rotate=opts["rotate"]))
    except ValidationError as exc:
        raise CliError(" ".join(exc.messages), code=2) from None
    return 0
