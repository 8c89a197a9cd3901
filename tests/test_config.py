"""Settings from the environment (``arbbot/config.py``): safe defaults, clear errors."""

from __future__ import annotations

import pytest

from arbbot.config import Settings
from arbbot.errors import ConfigError


def test_mode_defaults_to_dry_run_never_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARBBOT_MODE", raising=False)
    assert Settings.from_env().mode == "dry-run"


@pytest.mark.parametrize("mode", ["dry-run", "paper", "live"])
def test_mode_is_what_was_chosen(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    monkeypatch.setenv("ARBBOT_MODE", mode)
    assert Settings.from_env().mode == mode


def test_an_unknown_mode_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARBBOT_MODE", "LIVE!")
    with pytest.raises(ConfigError, match="ARBBOT_MODE must be one of .* got 'LIVE!'"):
        Settings.from_env()
