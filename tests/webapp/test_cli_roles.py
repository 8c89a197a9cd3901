"""``manage.py arbbot roles``: the roles exist after migrate, a login gets one role and a
generated password (printed once, never the same twice), a token authenticates the API,
and bad input is named with exit code 2."""

from __future__ import annotations

import io
import re
import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.test import Client

from webapp.core.roles import ROLES


def arbbot(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("arbbot", "roles", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_roles_logins_and_tokens() -> None:
    Group.objects.all().delete()
    code, out, _ = arbbot("setup")
    assert code == 0 and "group operator: 2 permission(s)" in out
    assert {g.name for g in Group.objects.all()} == set(ROLES)
    assert set(Group.objects.get(name="operator").permissions.values_list("codename", flat=True)) == {
        "view_console", "operate_fleet"}

    code, out, _ = arbbot("user", "alice", "--role", "operator")
    assert code == 0
    password = re.search(r"password \(shown once\): (\S+)", out).group(1)  # type: ignore[union-attr]
    assert len(password) >= 20
    alice = User.objects.get(username="alice")
    assert [g.name for g in alice.groups.all()] == ["operator"] and not alice.is_staff
    assert Client().post("/accounts/login/", {"username": "alice", "password": password}).status_code == 302

    _, out, _ = arbbot("user", "alice", "--role", "admin")
    assert password not in out  # a new password each time
    alice.refresh_from_db()
    assert [g.name for g in alice.groups.all()] == ["admin"] and alice.is_staff
    _, out, _ = arbbot("user", "alice", "--role", "viewer", "--keep-password")
    assert "password" not in out

    key = arbbot("token", "alice")[1].strip()
    assert Client().get("/api/summary/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert arbbot("token", "alice")[1].strip() == key
    assert arbbot("token", "alice", "--rotate")[1].strip() != key

    code, _, err = arbbot("token", "bob")
    assert code == 2 and "unknown user 'bob'" in err


def test_a_role_that_does_not_exist_is_refused() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--role: invalid choice: 'root'"):
        call_command("arbbot", "roles", "user", "carol", "--role", "root")
