"""Settings from the environment, read in this one place.

Everything has a default that works on the embedded devnet on this machine. Secrets
(the signing key) are read from the environment or from a file a secret is mounted at,
never from code, and are never part of ``repr`` (so never in a log line).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from arbbot.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
MODES = ("dry-run", "paper", "live")


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
    signer_key: str = field(default="", repr=False)

    @classmethod
    def from_env(cls) -> Settings:
        mode = env("ARBBOT_MODE", "live")
        if mode not in MODES:
            raise ConfigError(f"ARBBOT_MODE must be one of {MODES}, got {mode!r}")
        devnet_dir = Path(env("ARBBOT_DEVNET_DIR", str(REPO_ROOT / ".devnet")))
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
            signer_key=_read_secret("ARBBOT_SIGNER_KEY", devnet_dir / "signer.key"),
        )


def _read_secret(name: str, default_file: Path) -> str:
    """``NAME`` from the environment, else the file at ``NAME_FILE`` (a mounted secret),
    else the devnet's generated key file if present, else empty."""
    value = os.environ.get(name)
    if value:
        return value.strip()
    path = os.environ.get(f"{name}_FILE")
    candidate = Path(path) if path else default_file
    if candidate.is_file():
        return candidate.read_text().strip()
    if path:
        raise ConfigError(f"{name}_FILE points at {path}, which does not exist")
    return ""


def get_settings() -> Settings:
    return Settings.from_env()
