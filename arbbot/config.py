"""Settings from the environment, read in this one place.

Everything has a default that works on the embedded devnet on this machine. Secrets
(the signing key) are read from the environment, from a file a secret is mounted at, or
from an encrypted JSON keystore and its password; never from code, never part of ``repr``
(so never in a log line), and never in an error message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from arbbot.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
MODES = ("dry-run", "paper", "live")
DEFAULT_MAX_FEE_PER_GAS_WEI = 500 * 10**9  # 500 gwei


def env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _non_negative_int(name: str, default: str) -> int:
    raw = env(name, default)
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number >= 0, got {raw!r}") from None
    if value < 0:
        raise ConfigError(f"{name} must be a whole number >= 0, got {raw!r}")
    return value


def _float_in(name: str, default: str, low: float, high: float) -> float:
    raw = env(name, default)
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number within {low}..{high}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be a number within {low}..{high}, got {raw!r}")
    return value


def _entries(name: str, raw: str) -> list[tuple[str, str]]:
    """``"key=value,key=value"`` (blanks ignored) as pairs; an entry without ``=`` is an error."""
    out = []
    for item in raw.split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{name}: entry {item!r} is not key=value")
        out.append((key.strip(), value.strip()))
    return out


def _amount(name: str, item: str, value: str) -> int:
    try:
        amount = int(value)
    except ValueError:
        raise ConfigError(f"{name}: entry {item!r}: {value!r} is not a whole number of base units") from None
    if amount < 0:
        raise ConfigError(f"{name}: entry {item!r}: the amount must be >= 0")
    return amount


def parse_max_amount_in(raw: str, name: str = "ARBBOT_MAX_AMOUNT_IN") -> tuple[dict[str, int], int | None]:
    """Per-token input caps ``"0xtoken=amount,...,*=amount"`` (base units; ``*``: every
    other token) -> ({lower-case token address: cap}, default cap or None)."""
    caps: dict[str, int] = {}
    default: int | None = None
    for key, value in _entries(name, raw):
        item = f"{key}={value}"
        amount = _amount(name, item, value)
        if key == "*":
            if default is not None:
                raise ConfigError(f"{name}: entry {item!r}: '*' given twice")
            default = amount
            continue
        token = key.lower()
        if len(token) != 42 or not token.startswith("0x") or any(c not in "0123456789abcdef" for c in token[2:]):
            raise ConfigError(f"{name}: entry {item!r}: {key!r} is not a token address (0x + 40 hex digits)")
        if token in caps:
            raise ConfigError(f"{name}: entry {item!r}: token {token} given twice")
        caps[token] = amount
    return caps, default


def parse_per_chain(raw: str, name: str) -> tuple[dict[int, int], int | None]:
    """``"<wei>"`` for every chain, or ``"<chain id>=<wei>,...,*=<wei>"`` ->
    ({chain id: value}, default or None)."""
    raw = raw.strip()
    if raw and "=" not in raw:
        return {}, _amount(name, raw, raw)
    per_chain: dict[int, int] = {}
    default: int | None = None
    for key, value in _entries(name, raw):
        item = f"{key}={value}"
        amount = _amount(name, item, value)
        if key == "*":
            default = amount
            continue
        try:
            chain_id = int(key)
        except ValueError:
            raise ConfigError(f"{name}: entry {item!r}: {key!r} is not a chain id") from None
        per_chain[chain_id] = amount
    return per_chain, default


@dataclass(frozen=True)
class Settings:
    database_url: str
    broker_url: str
    redis_url: str
    redis_prefix: str
    mode: str
    devnet_dir: Path
    node_modules: Path
    heartbeat_file: Path
    metrics_port: int
    scan_interval_s: float
    daily_loss_limit_wei: int
    #: Path stage: at most this many opportunities per pool per block (0: no cap); see
    #: ``PathEngine.max_per_pool``.
    path_max_per_pool: int = 3
    #: Path stage: a block with more screened candidates than this is sent on in two parts,
    #: the opportunities of its first this many candidates as soon as they are sized, so the
    #: execute stage decides on the best of them without waiting for the rest (0: one part;
    #: ``PathEngine.evaluate``, ``arbbot.scoring.rule.after_first``).
    path_first_part: int = 128
    #: The follower's lane: once a block's first part sent something to execute, the lane
    #: leaves the cores to that stage this long (ms) before it sizes the rest, or until a
    #: newer head arrives (``workers.tasks.path.decide_here``'s ``pause``; 0: no pause).
    lane_yield_ms: float = 25.0
    #: The scan stage records every block it publishes here (``arbbot.replay``); None: off.
    record_dir: Path | None = None
    #: The path stage's cycle index holds at most this many cycles (bounded memory).
    path_max_cycles: int = 10_000_000
    #: Per-token input caps (lower-case address -> base units) and the cap of other tokens.
    max_amount_in: dict[str, int] = field(default_factory=dict)
    default_max_amount_in: int | None = None
    #: Hard cap on maxFeePerGas (legacy: gas price) per chain id, and for other chains.
    max_fee_per_gas_wei: dict[int, int] = field(default_factory=dict)
    default_max_fee_per_gas_wei: int | None = DEFAULT_MAX_FEE_PER_GAS_WEI
    fee_priority_percentile: float = 50.0
    fee_inclusion_blocks: int = 3
    min_priority_fee_wei: int = 0
    max_open_txs: int = 16  # per account; 0: no limit
    pool_cooldown_s: float = 60.0
    #: A message body larger than this is dead-lettered unread by the worker that receives
    #: it (``workers.deadletters``): RabbitMQ 4's own default limit.
    max_message_bytes: int = 16 * 1024 * 1024
    #: A message whose processing killed its worker process (SIGKILL, OOM, a crash) this many
    #: times is dead-lettered on its next delivery instead of run again (``workers.deadletters``);
    #: 0: never.
    max_deliveries: int = 3
    #: Seconds between beat's cross-chain strategy passes (``workers.tasks.bridge.tick``, and
    #: ``resume`` for sagas whose next step was lost) over the pairs of ``config apply``'s
    #: ``xchain`` section; 0, the default: off.
    xchain_tick_s: float = 0.0
    #: What the learned scorer trains on (``arbbot ml train`` and the hourly beat task):
    #: ``live``, the default, the fleet's own recorded executions; ``paper``, labels from
    #: backtesting the recordings under ``record_dir`` (``arbbot.scoring.labels``: every
    #: opportunity the rule saw, what it would have found landing a block later); ``all``,
    #: both. A recording made while the chain traded live gives leaky paper labels (the
    #: fleet's own fills closed the gaps it took): back-test paper or dry-run recordings.
    ml_labels: str = "live"
    signer_key: str = field(default="", repr=False)
    #: The cross-chain inventory wallet's key (``ARBBOT_XCHAIN_KEY`` / ``ARBBOT_XCHAIN_KEY_FILE``,
    #: else the two-chain devnet's ``xchain.key``): never the execute stage's signer, the two
    #: must not share nonces. Empty: no cross-chain pass runs.
    xchain_key: str = field(default="", repr=False)
    #: Signs bundles for private relays (their reputation); never the trading key.
    relay_reputation_key: str = field(default="", repr=False)
    #: Log lines: ``json`` (one JSON object a line, for production), ``console`` (readable),
    #: ``auto`` (console on a terminal, else JSON). ``ARBBOT_LOG_FORMAT``, ``ARBBOT_LOG_LEVEL``.
    log_format: str = "auto"
    log_level: str = "INFO"
    #: The trace exporter the standard ``OTEL_*`` variables ask for (``otlp``, ``console``),
    #: or None: tracing off (see ``trace_exporter``).
    trace_exporter: str | None = None
    #: TLS to the broker (an ``amqps://`` URL): the CA file its certificate is verified
    #: against (``ARBBOT_BROKER_TLS_CA_FILE``); None: plain AMQP, or the system's CAs.
    #: Redis takes its TLS options in its URL (``rediss://...?ssl_ca_certs=<file>``).
    broker_tls_ca_file: Path | None = None

    def broker_ssl(self) -> dict[str, object] | bool:
        """Celery's ``broker_use_ssl``: verify the broker's certificate against the CA file
        when one is given; True for ``amqps://`` with the system's CAs; False for ``amqp://``."""
        import ssl

        if self.broker_tls_ca_file is not None:
            return {"ca_certs": str(self.broker_tls_ca_file), "cert_reqs": ssl.CERT_REQUIRED}
        return self.broker_url.startswith("amqps://")

    def max_fee_cap(self, chain_id: int) -> int | None:
        return self.max_fee_per_gas_wei.get(chain_id, self.default_max_fee_per_gas_wei)

    @classmethod
    def from_env(cls) -> Settings:
        # Nothing trades live unless someone chose live: unset means simulate only.
        mode = env("ARBBOT_MODE", "dry-run")
        if mode not in MODES:
            raise ConfigError(f"ARBBOT_MODE must be one of {MODES}, got {mode!r}")
        devnet_dir = Path(env("ARBBOT_DEVNET_DIR", str(REPO_ROOT / ".devnet")))
        caps, default_cap = parse_max_amount_in(env("ARBBOT_MAX_AMOUNT_IN", ""))
        fee_caps, default_fee_cap = parse_per_chain(
            env("ARBBOT_MAX_FEE_PER_GAS_WEI", str(DEFAULT_MAX_FEE_PER_GAS_WEI)), "ARBBOT_MAX_FEE_PER_GAS_WEI"
        )
        if default_fee_cap is None:  # chains not named keep the default cap: never uncapped
            default_fee_cap = DEFAULT_MAX_FEE_PER_GAS_WEI
        return cls(
            database_url=env("ARBBOT_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/arbbot"),
            broker_url=env("ARBBOT_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//"),
            redis_url=env("ARBBOT_REDIS_URL", "redis://127.0.0.1:6379/0"),
            redis_prefix=env("ARBBOT_REDIS_PREFIX", "arbbot"),
            mode=mode,
            devnet_dir=devnet_dir,
            node_modules=Path(env("ARBBOT_NODE_MODULES", str(REPO_ROOT / "node_modules"))),
            heartbeat_file=Path(env("ARBBOT_HEARTBEAT_FILE", "/tmp/arbbot-worker-heartbeat")),
            metrics_port=int(env("ARBBOT_METRICS_PORT", "0")),
            scan_interval_s=float(env("ARBBOT_SCAN_INTERVAL", "1.0")),
            # Execution stops for the day once realised PnL (net of gas) falls below -limit.
            daily_loss_limit_wei=int(env("ARBBOT_DAILY_LOSS_LIMIT_WEI", str(10**18))),
            path_max_per_pool=_non_negative_int("ARBBOT_PATH_MAX_PER_POOL", "3"),
            path_first_part=_non_negative_int("ARBBOT_PATH_FIRST_PART", "128"),
            lane_yield_ms=_float_in("ARBBOT_LANE_YIELD_MS", "25", 0, 1000),
            record_dir=Path(env("ARBBOT_RECORD_DIR", "")) if env("ARBBOT_RECORD_DIR", "").strip() else None,
            path_max_cycles=max(1, _non_negative_int("ARBBOT_PATH_MAX_CYCLES", "10000000")),
            max_amount_in=caps,
            default_max_amount_in=default_cap,
            max_fee_per_gas_wei=fee_caps,
            default_max_fee_per_gas_wei=default_fee_cap,
            fee_priority_percentile=_float_in("ARBBOT_FEE_PRIORITY_PERCENTILE", "50", 0, 100),
            fee_inclusion_blocks=_non_negative_int("ARBBOT_FEE_INCLUSION_BLOCKS", "3"),
            min_priority_fee_wei=_non_negative_int("ARBBOT_MIN_PRIORITY_FEE_WEI", "0"),
            max_open_txs=_non_negative_int("ARBBOT_MAX_OPEN_TXS", "16"),
            pool_cooldown_s=_float_in("ARBBOT_POOL_COOLDOWN_S", "60", 0, 86400),
            max_message_bytes=_non_negative_int("ARBBOT_MAX_MESSAGE_BYTES", str(16 * 1024 * 1024)),
            max_deliveries=_non_negative_int("ARBBOT_MAX_DELIVERIES", "3"),
            xchain_tick_s=_float_in("ARBBOT_XCHAIN_TICK_S", "0", 0, 3600),
            ml_labels=_choice("ARBBOT_ML_LABELS", "live", ML_LABELS),
            signer_key=_signer_key(devnet_dir),
            xchain_key=_xchain_key(devnet_dir),
            relay_reputation_key=_read_secret("ARBBOT_RELAY_REPUTATION_KEY", devnet_dir / "relay-reputation.key"),
            log_format=_choice("ARBBOT_LOG_FORMAT", "auto", LOG_FORMATS),
            log_level=env("ARBBOT_LOG_LEVEL", "INFO").upper(),
            trace_exporter=trace_exporter(),
            broker_tls_ca_file=_existing_file("ARBBOT_BROKER_TLS_CA_FILE"),
        )

    def __post_init__(self) -> None:
        # Whatever logs a line from now on never shows these (arbbot.obs.logs redacts them).
        from arbbot.obs.logs import register_secrets

        register_secrets(self.signer_key, self.xchain_key, self.relay_reputation_key,
                         *(_url_password(u) for u in (self.database_url, self.broker_url, self.redis_url)))
        if self.xchain_key and _same_key(self.xchain_key, self.signer_key):
            # two senders on one account race for its nonces: a leg could replace a trade
            raise ConfigError("the cross-chain key (ARBBOT_XCHAIN_KEY) is the execute stage's signing key: "
                              "give the inventory wallet a key of its own")


LOG_FORMATS = ("auto", "json", "console")
ML_LABELS = ("live", "paper", "all")


def _existing_file(name: str) -> Path | None:
    raw = env(name, "").strip()
    if not raw:
        return None
    if not Path(raw).is_file():
        raise ConfigError(f"{name} points at {raw}, which does not exist")
    return Path(raw)


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env(name, default).strip().lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _url_password(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    try:
        return unquote(urlsplit(url).password or "")
    except ValueError:
        return ""


def trace_exporter() -> str | None:
    """Tracing is off unless the standard OpenTelemetry variables ask for it: an OTLP
    endpoint (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), or
    ``OTEL_TRACES_EXPORTER`` = ``otlp`` / ``console``; ``OTEL_SDK_DISABLED=true`` or
    ``OTEL_TRACES_EXPORTER=none`` turn it off whatever else is set. Only OTLP over HTTP
    (protobuf) is installed: ``grpc`` is refused by name."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    asked = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    endpoint = any(_set(n) for n in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
    if asked in ("", "otlp") and not (asked or endpoint):
        return None
    if asked == "none":
        return None
    if asked not in ("", "otlp", "console"):
        raise ConfigError(f"OTEL_TRACES_EXPORTER must be otlp, console or none here, got {asked!r}")
    if asked == "console":
        return "console"
    name = next((n for n in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL") if _set(n)), "")
    protocol = os.environ.get(name, "").strip().lower() if name else "http/protobuf"
    if protocol != "http/protobuf":
        raise ConfigError(f"{name}={protocol!r}: only http/protobuf is installed (the OTLP/HTTP port, 4318)")
    return "otlp"


SIGNER_KEY_VARS = ("ARBBOT_SIGNER_KEY", "ARBBOT_SIGNER_KEY_FILE")
SIGNER_KEYSTORE_VARS = (
    "ARBBOT_SIGNER_KEYSTORE_FILE",
    "ARBBOT_SIGNER_KEYSTORE_PASSWORD",
    "ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE",
)
#: Every variable that carries the signing key or unlocks it: only the processes that sign
#: (the execute queue's workers) may have any of them (tests/deploy checks the manifests).
SIGNER_VARS = SIGNER_KEY_VARS + SIGNER_KEYSTORE_VARS
#: The cross-chain inventory wallet's key: only the bridge queue's workers may have either,
#: never together with a signer variable (tests/deploy checks the manifests).
XCHAIN_KEY_VARS = ("ARBBOT_XCHAIN_KEY", "ARBBOT_XCHAIN_KEY_FILE")


def _set(name: str) -> bool:
    return bool(os.environ.get(name, "").strip())


def _read_secret(name: str, default_file: Path) -> str:
    """``NAME`` from the environment, else the file at ``NAME_FILE`` (a mounted secret),
    else the devnet's generated key file if present, else empty. Setting both ``NAME`` and
    ``NAME_FILE`` is an error: which one wins would be a guess."""
    value = os.environ.get(name, "").strip()
    path = os.environ.get(f"{name}_FILE", "").strip()
    if value and path:
        raise ConfigError(f"both {name} and {name}_FILE are set: set only one")
    if value:
        return value
    candidate = Path(path) if path else default_file
    if candidate.is_file():
        return candidate.read_text().strip()
    if path:
        raise ConfigError(f"{name}_FILE points at {path}, which does not exist")
    return ""


def _read_keystore_password() -> str:
    """The keystore's password from ``ARBBOT_SIGNER_KEYSTORE_PASSWORD`` or the file at
    ``ARBBOT_SIGNER_KEYSTORE_PASSWORD_FILE`` (trailing line breaks dropped, nothing else:
    spaces may be part of a password)."""
    name = "ARBBOT_SIGNER_KEYSTORE_PASSWORD"
    value = os.environ.get(name, "")
    path = os.environ.get(f"{name}_FILE", "").strip()
    if value and path:
        raise ConfigError(f"both {name} and {name}_FILE are set: set only one")
    if value:
        return value
    if not path:
        raise ConfigError(f"ARBBOT_SIGNER_KEYSTORE_FILE is set but neither {name} nor {name}_FILE is")
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"{name}_FILE points at {path}, which does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
    return text.rstrip("\r\n")


def _decrypt_keystore(path: str) -> str:
    """The private key (``0x`` + 64 hex digits) in the encrypted JSON keystore (Web3 Secret
    Storage, version 3, as geth, clef, foundry's ``cast wallet`` and eth-account write it).

    Errors name the file and what is wrong, never the password or the key; exceptions are
    raised ``from None`` so no traceback carries a decryption library's locals."""
    import json

    from eth_account import Account

    name = "ARBBOT_SIGNER_KEYSTORE_FILE"
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"{name} points at {path}, which does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{name}: cannot read {path}: {getattr(exc, 'strerror', None) or 'not text'}") from None
    try:
        keystore = json.loads(text)
    except ValueError:
        keystore = None
    if not (
        isinstance(keystore, dict)
        and keystore.get("version") == 3
        and isinstance(keystore.get("crypto") or keystore.get("Crypto"), dict)
    ):
        raise ConfigError(f"{name}: {path} is not an encrypted JSON keystore (version 3, with a 'crypto' section)")
    password = _read_keystore_password()
    from arbbot.obs.logs import register_secrets

    register_secrets(password)  # never in a log line (from 8 characters: shorter ones would garble words)
    try:
        key = Account.decrypt(keystore, password)
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise ConfigError(f"{name}: wrong password for the keystore {path}") from None
        raise ConfigError(f"{name}: {path} is not a keystore this version can decrypt") from None
    except Exception:  # a malformed crypto section: KeyError, TypeError, binascii.Error ...
        raise ConfigError(f"{name}: {path} is not a keystore this version can decrypt") from None
    return "0x" + bytes(key).hex()


def _signer_key(devnet_dir: Path) -> str:
    """The signing key from exactly one source: ``ARBBOT_SIGNER_KEY`` / ``ARBBOT_SIGNER_KEY_FILE``
    (a raw hex key), or ``ARBBOT_SIGNER_KEYSTORE_FILE`` (an encrypted JSON keystore) with its
    password; else the devnet's generated key if present; else empty (the process does not
    sign). A key that is not a valid secp256k1 private key is refused at start, by the name
    of its source and never by its value."""
    raw = [n for n in SIGNER_KEY_VARS if _set(n)]
    keystore = os.environ.get("ARBBOT_SIGNER_KEYSTORE_FILE", "").strip()
    if raw and keystore:
        raise ConfigError(
            f"both a raw signing key ({' and '.join(raw)}) and ARBBOT_SIGNER_KEYSTORE_FILE are set: set only one"
        )
    if keystore:
        return _decrypt_keystore(keystore)
    if any(_set(n) for n in SIGNER_KEYSTORE_VARS):
        raise ConfigError("a keystore password is set but ARBBOT_SIGNER_KEYSTORE_FILE is not")
    key = _read_secret("ARBBOT_SIGNER_KEY", devnet_dir / "signer.key")
    if key:
        _check_private_key(key, raw[0] if raw else f"the devnet key file {devnet_dir / 'signer.key'}")
    return key


def _xchain_key(devnet_dir: Path) -> str:
    key = _read_secret("ARBBOT_XCHAIN_KEY", devnet_dir / "xchain.key")
    if key:
        source = next((n for n in XCHAIN_KEY_VARS if _set(n)),
                      f"the devnet key file {devnet_dir / 'xchain.key'}")
        _check_private_key(key, source)
    return key


def _same_key(a: str, b: str) -> bool:
    return a.lower().removeprefix("0x") == b.lower().removeprefix("0x")


def _check_private_key(key: str, source: str) -> None:
    digits = key[2:] if key[:2] in ("0x", "0X") else key
    valid = len(digits) == 64 and all(c in "0123456789abcdefABCDEF" for c in digits)
    if valid:
        from eth_keys.constants import SECPK1_N

        valid = 0 < int(digits, 16) < SECPK1_N
    if not valid:
        raise ConfigError(
            f"{source}: not a private key (expected 64 hex digits, optionally 0x-prefixed, "
            "in the secp256k1 range); the value is not shown"
        )


def get_settings() -> Settings:
    return Settings.from_env()
