"""The settings are safe by default: DEBUG off, no '*' host, no development SECRET_KEY
outside the devnet, the TLS proxy's header and origins from the environment. Each case
reads ``webapp.settings`` afresh in its own interpreter, with only the environment given."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REAL_KEY = "k" * 50
SHOW = ("import json, webapp.settings as s; print(json.dumps({'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, "
        "'key': s.SECRET_KEY, 'csrf': s.CSRF_TRUSTED_ORIGINS, 'proxy': getattr(s, 'SECURE_PROXY_SSL_HEADER', None), "
        "'secure_cookie': getattr(s, 'SESSION_COOKIE_SECURE', False)}))")


def settings_with(**env: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG") or k.startswith("ARBBOT_DATABASE")}
    return subprocess.run([sys.executable, "-c", SHOW], env={**keep, **env}, cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_defaults_are_safe() -> None:
    out = settings_with(DJANGO_SECRET_KEY=REAL_KEY)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["debug"] is False
    assert "*" not in got["hosts"] and got["hosts"]
    assert got["proxy"] is None and got["csrf"] == []


@pytest.mark.parametrize("key", ["", "dev-only-insecure-key-not-for-production", "change-me-to-50-random-characters",
                                 "REPLACE_ME", "django-insecure-" + "x" * 40, "short"])
def test_a_development_key_is_refused_outside_the_devnet(key: str) -> None:
    out = settings_with(DJANGO_SECRET_KEY=key)
    assert out.returncode != 0
    assert "DJANGO_SECRET_KEY" in out.stderr and "ARBBOT_DEVNET=1" in out.stderr


def test_the_devnet_may_use_the_development_key() -> None:
    out = settings_with(ARBBOT_DEVNET="1")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["key"] == "dev-only-insecure-key-not-for-production"


def test_a_wildcard_host_is_refused() -> None:
    out = settings_with(DJANGO_SECRET_KEY=REAL_KEY, DJANGO_ALLOWED_HOSTS="arbbot.example.com,*")
    assert out.returncode != 0 and "DJANGO_ALLOWED_HOSTS" in out.stderr


def test_the_tls_proxy_settings_come_from_the_environment() -> None:
    out = settings_with(
        DJANGO_SECRET_KEY=REAL_KEY, DJANGO_ALLOWED_HOSTS="arbbot.example.com",
        DJANGO_SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto", DJANGO_CSRF_TRUSTED_ORIGINS="https://arbbot.example.com",
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert got["csrf"] == ["https://arbbot.example.com"] and got["secure_cookie"] is True
