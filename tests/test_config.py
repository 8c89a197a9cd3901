"""Settings from the environment (``arbbot/config.py``): safe defaults, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from eth_account import Account

from arbbot.config import SIGNER_VARS, Settings
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


# --- the signing key: a raw hex key or an encrypted JSON keystore, from exactly one source ---

KEY = "0x" + "4c" * 31 + "01"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def signer_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No signer variable from the outer environment, and a devnet dir without a key."""
    for name in SIGNER_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ARBBOT_DEVNET_DIR", str(tmp_path / "no-devnet"))
    return monkeypatch


def _keystore(tmp_path: Path, key: str = KEY, password: str = PASSWORD) -> Path:
    # pbkdf2 with 2 rounds: the format is the standard one, the cost is a test's.
    path = tmp_path / "keystore.json"
    path.write_text(
        json.dumps(Account.encrypt(key, password, kdf="pbkdf2", iterations=2))
    )
    return path


def _assert_nothing_secret(message: str) -> None:
    assert KEY[2:] not in message.lower()
    assert PASSWORD not in message


def test_no_signer_configured_means_no_key(signer_env: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().signer_key == ""


def test_raw_key_from_env_and_from_file(
    signer_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    signer_env.setenv("ARBBOT_SIGNER_KEY", KEY)
    assert Settings.from_env().signer_key == KEY
    signer_env.delenv("ARBBOT_SIGNER_KEY")
    (tmp_path / "signer.key").write_text(KEY + "\n")
    signer_env.setenv("ARBBOT_SIGNER_KEY_FILE", str(tmp_path / "signer.key"))
    assert Settings.from_env().signer_key == KEY


def test_the_cross_chain_key_is_read_and_never_the_signing_key(signer_env: pytest.MonkeyPatch) -> None:
    signer_env.delenv("ARBBOT_XCHAIN_KEY", raising=False)
    signer_env.delenv("ARBBOT_XCHAIN_KEY_FILE", raising=False)
    assert Settings.from_env().xchain_key == ""
    other = "0x" + "22" * 32
    signer_env.setenv("ARBBOT_XCHAIN_KEY", other)
    assert Settings.from_env().xchain_key == other and other[2:] not in repr(Settings.from_env())
    signer_env.setenv("ARBBOT_SIGNER_KEY", other.upper().replace("0X", ""))
    with pytest.raises(ConfigError, match="is the execute stage's signing key") as err:
        Settings.from_env()
    assert other[2:] not in str(err.value)


def test_the_key_is_not_in_the_settings_repr(signer_env: pytest.MonkeyPatch) -> None:
    signer_env.setenv("ARBBOT_SIGNER_KEY", KEY)
    assert KEY[2:] not in repr(Settings.from_env()).lower()


def test_a_missing_key_file_is_named(
    signer_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    signer_env.setenv("ARBBOT_SIGNER_KEY_FILE", str(tmp_path / "absent.key"))
    with pytest.raises(
        ConfigError,
        match="ARBBOT_SIGNER_KEY_FILE points at .*absent.key, which does not exist",
    ):
        Settings.from_env()


@pytest.mark.parametrize(
    "bad", ["REPLACE_ME", "0x1234", "0x" + "00" * 32, "0x" + "ff" * 32, KEY + "00"]
)
def test_a_malformed_raw_key_is_refused_without_showing_it(
    signer_env: pytest.MonkeyPatch, bad: str
) -> None:
    signer_env.setenv("ARBBOT_SIGNER_KEY", bad)
    with pytest.raises(
        ConfigError, match="ARBBOT_SIGNER_KEY: not a private key"
    ) as err:
        Settings.from_env()
    assert bad not in str(err.value)


def test_key_and_key_file_together_are_refused(
    signer_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "signer.key").write_text(KEY)
    signer_env.setenv("ARBBOT_SIGNER_KEY", KEY)
    signer_env.setenv("ARBBOT_SIGNER_KEY_FILE", str(tmp_path / "signer.key"))
    with pytest.raises(
        ConfigError, match="both ARBBOT_SIGNER_KEY and ARBBOT_SIGNER_KEY_FILE"
    ):
        Settings.from_env()


@pytest.mark.parametrize("how", ["env", "file", "file with newline"])
def test_an_encrypted_keystore_is_decrypted(
    signer_env: pytest.MonkeyPatch, tmp_path: Path, how: str
) -> None:
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_FILE", str(_keystore(tmp_path)))
    if how == "env":
        signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_PASSWORD", PASSWORD)
    else:
        (tmp_path / "password").write_text(
            PASSWORD + ("\n" if how == "file with newline" else "")
        )
        signer_env.setenv(
            "ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE", str(tmp_path / "password")
        )
    settings = Settings.from_env()
    assert settings.signer_key == KEY
    assert (
        Account.from_key(settings.signer_key).address == Account.from_key(KEY).address
    )
    assert PASSWORD not in repr(settings)


def test_a_keystore_with_the_wrong_password_is_refused(
    signer_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_FILE", str(_keystore(tmp_path)))
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_PASSWORD", "not " + PASSWORD)
    with pytest.raises(
        ConfigError,
        match="ARBBOT_SIGNER_KEYSTORE_FILE: wrong password for the keystore .*keystore.json",
    ) as err:
        Settings.from_env()
    _assert_nothing_secret(str(err.value))
    assert "not " + PASSWORD not in str(err.value)
    # raised "from None": no chained exception carries the library's view of the secret
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_a_missing_keystore_is_named(
    signer_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_FILE", str(tmp_path / "absent.json"))
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_PASSWORD", PASSWORD)
    with pytest.raises(
        ConfigError,
        match="ARBBOT_SIGNER_KEYSTORE_FILE points at .*absent.json, which does not exist",
    ):
        Settings.from_env()


@pytest.mark.parametrize(
    "content",
    [
        "not json at all",
        KEY,  # a raw key where a keystore was promised
        json.dumps({"address": "00" * 20, "version": 3}),
        json.dumps({"crypto": {}, "version": 1}),
    ],
)
def test_a_file_that_is_not_a_keystore_is_refused(
    signer_env: pytest.MonkeyPatch, tmp_path: Path, content: str
) -> None:
    (tmp_path / "ks.json").write_text(content)
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_FILE", str(tmp_path / "ks.json"))
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_PASSWORD", PASSWORD)
    with pytest.raises(
        ConfigError, match=r"ks.json is not an encrypted JSON keystore"
    ) as err:
        Settings.from_env()
    _assert_nothing_secret(str(err.value))


def test_a_keystore_with_a_broken_crypto_section_is_refused(
    signer_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    keystore = json.loads(_keystore(tmp_path).read_text())
    keystore["crypto"]["kdf"] = "rot13"
    (tmp_path / "ks.json").write_text(json.dumps(keystore))
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_FILE", str(tmp_path / "ks.json"))
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_PASSWORD", PASSWORD)
    with pytest.raises(
        ConfigError, match="ks.json is not a keystore this version can decrypt"
    ):
        Settings.from_env()


def test_a_keystore_without_a_password_is_refused(
    signer_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_FILE", str(_keystore(tmp_path)))
    with pytest.raises(
        ConfigError,
        match="neither ARBBOT_SIGNER_KEYSTORE_PASSWORD nor ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE",
    ):
        Settings.from_env()
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE", str(tmp_path / "absent"))
    with pytest.raises(
        ConfigError,
        match="ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE points at .*absent, which does not exist",
    ):
        Settings.from_env()


def test_password_from_env_and_file_together_is_refused(
    signer_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "password").write_text(PASSWORD)
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_FILE", str(_keystore(tmp_path)))
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_PASSWORD", PASSWORD)
    signer_env.setenv(
        "ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE", str(tmp_path / "password")
    )
    with pytest.raises(
        ConfigError,
        match="both ARBBOT_SIGNER_KEYSTORE_PASSWORD and ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE",
    ) as err:
        Settings.from_env()
    _assert_nothing_secret(str(err.value))


@pytest.mark.parametrize("raw", ["ARBBOT_SIGNER_KEY", "ARBBOT_SIGNER_KEY_FILE"])
def test_a_raw_key_and_a_keystore_together_are_refused_by_name(
    signer_env: pytest.MonkeyPatch, tmp_path: Path, raw: str
) -> None:
    (tmp_path / "signer.key").write_text(KEY)
    signer_env.setenv(
        raw, KEY if raw == "ARBBOT_SIGNER_KEY" else str(tmp_path / "signer.key")
    )
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_FILE", str(_keystore(tmp_path)))
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_PASSWORD", PASSWORD)
    with pytest.raises(
        ConfigError,
        match=f"both a raw signing key \\({raw}\\) and ARBBOT_SIGNER_KEYSTORE_FILE",
    ) as err:
        Settings.from_env()
    _assert_nothing_secret(str(err.value))


def test_a_password_without_a_keystore_is_refused(
    signer_env: pytest.MonkeyPatch,
) -> None:
    signer_env.setenv("ARBBOT_SIGNER_KEYSTORE_PASSWORD", PASSWORD)
    with pytest.raises(
        ConfigError,
        match="a keystore password is set but ARBBOT_SIGNER_KEYSTORE_FILE is not",
    ) as err:
        Settings.from_env()
    _assert_nothing_secret(str(err.value))


def test_the_devnet_key_file_is_the_fallback(
    signer_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    devnet = tmp_path / "devnet"
    devnet.mkdir()
    (devnet / "signer.key").write_text(KEY + "\n")
    signer_env.setenv("ARBBOT_DEVNET_DIR", str(devnet))
    assert Settings.from_env().signer_key == KEY


def test_broker_tls_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import ssl

    monkeypatch.delenv("ARBBOT_BROKER_TLS_CA_FILE", raising=False)
    monkeypatch.setenv("ARBBOT_BROKER_URL", "amqp://scan:pw@rabbitmq:5672/arbbot")
    assert Settings.from_env().broker_ssl() is False
    monkeypatch.setenv("ARBBOT_BROKER_URL", "amqps://scan:pw@rabbitmq:5671/arbbot")
    assert Settings.from_env().broker_ssl() is True, "amqps: the system's CAs"
    monkeypatch.setenv("ARBBOT_BROKER_TLS_CA_FILE", str(tmp_path / "missing.crt"))
    with pytest.raises(ConfigError, match="ARBBOT_BROKER_TLS_CA_FILE"):
        Settings.from_env()
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("ARBBOT_BROKER_TLS_CA_FILE", str(tmp_path / "ca.crt"))
    assert Settings.from_env().broker_ssl() == {"ca_certs": str(tmp_path / "ca.crt"), "cert_reqs": ssl.CERT_REQUIRED}


def test_beat_runs_no_cross_chain_pass_unless_turned_on(monkeypatch: pytest.MonkeyPatch) -> None:
    from workers import queues
    from workers.celery_app import _xchain_schedule

    monkeypatch.delenv("ARBBOT_XCHAIN_TICK_S", raising=False)
    assert Settings.from_env().xchain_tick_s == 0 and _xchain_schedule(0) == {}
    monkeypatch.setenv("ARBBOT_XCHAIN_TICK_S", "3")
    entries = _xchain_schedule(Settings.from_env().xchain_tick_s)
    assert {e["task"]: e["schedule"] for e in entries.values()} == {
        "workers.tasks.bridge.tick": 3.0, "workers.tasks.bridge.resume": 30.0,
    }
    assert {queues.route_for_task(e["task"]) for e in entries.values()} == {"bridge"}
    monkeypatch.setenv("ARBBOT_XCHAIN_TICK_S", "-1")
    with pytest.raises(ConfigError, match="ARBBOT_XCHAIN_TICK_S"):
        Settings.from_env()


def test_what_the_learned_scorer_trains_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARBBOT_ML_LABELS", raising=False)
    assert Settings.from_env().ml_labels == "live"  # the fleet's own executions, as before
    monkeypatch.setenv("ARBBOT_ML_LABELS", "Paper")
    assert Settings.from_env().ml_labels == "paper"
    monkeypatch.setenv("ARBBOT_ML_LABELS", "backtest")
    with pytest.raises(ConfigError, match="ARBBOT_ML_LABELS"):
        Settings.from_env()


def test_the_lanes_pause_defaults_to_25_ms_and_refuses_a_wrong_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ARBBOT_LANE_YIELD_MS", raising=False)
    assert Settings.from_env().lane_yield_ms == 25.0
    monkeypatch.setenv("ARBBOT_LANE_YIELD_MS", "0")
    assert Settings.from_env().lane_yield_ms == 0.0
    for wrong in ("-1", "1001", "soon"):
        monkeypatch.setenv("ARBBOT_LANE_YIELD_MS", wrong)
        with pytest.raises(ConfigError, match=f"ARBBOT_LANE_YIELD_MS must be a number within 0..1000, got '{wrong}'"):
            Settings.from_env()
