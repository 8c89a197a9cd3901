"""Field validators shared by models, the config loader and the API.

The RPC client (``arbbot.chain.rpc``) speaks HTTP only, so ``rpc_urls`` accepts http(s)
URLs and refuses a ws(s) one by name (it would pass here and fail at the first call);
WebSocket endpoints go in ``ws_urls``, read by the block follower."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from django.core.exceptions import ValidationError

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_HASH32 = re.compile(r"^0x[0-9a-fA-F]{64}$")


def validate_address(value: str) -> None:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValidationError(
            "%(value)r is not a valid EVM address (expected 0x followed by 40 hex digits).",
            code="invalid_address",
            params={"value": value},
        )


def validate_hash32(value: str) -> None:
    """A 32-byte hash as 0x + 64 hex digits (an init-code hash)."""
    if not isinstance(value, str) or not _HASH32.match(value):
        raise ValidationError(
            "%(value)r is not 32 bytes of hex (expected 0x followed by 64 hex digits).",
            code="invalid_hash32",
            params={"value": value},
        )


def url_list(value: str) -> list[str]:
    """A comma or newline separated list of URLs, blanks dropped."""
    return [u.strip() for u in value.replace("\n", ",").split(",") if u.strip()]


def validate_rpc_urls(value: str) -> None:
    urls = url_list(value)
    if not urls:
        raise ValidationError("at least one RPC URL is required", code="no_rpc_url")
    for i, url in enumerate(urls):
        parsed = urlparse(url)
        if parsed.scheme in ("ws", "wss"):
            raise ValidationError(
                "[%(i)d] %(url)r is a WebSocket URL: the RPC client speaks HTTP only; "
                "put it under ws_urls",
                code="ws_rpc_url",
                params={"i": i, "url": redact_url(url)},
            )
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationError(
                "[%(i)d] %(url)r is not an http(s) URL",
                code="invalid_rpc_url",
                params={"i": i, "url": redact_url(url)},
            )


def validate_ws_urls(value: str) -> None:
    for i, url in enumerate(url_list(value)):
        parsed = urlparse(url)
        if parsed.scheme not in ("ws", "wss") or not parsed.netloc:
            raise ValidationError(
                "[%(i)d] %(url)r is not a ws(s) URL",
                code="invalid_ws_url",
                params={"i": i, "url": redact_url(url)},
            )


def validate_http_urls(value: str) -> None:
    """Relay URLs and the like: http(s) only, blank allowed."""
    for i, url in enumerate(url_list(value)):
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValidationError(
                "[%(i)d] %(url)r is not an http(s) URL",
                code="invalid_url",
                params={"i": i, "url": redact_url(url)},
            )


def redact_url(url: str) -> str:
    """Scheme and host (and port) only: an RPC or relay URL often carries an API key in its
    path, query or user part, which must not reach a log, an error or ``config show``.
    A URL that had more ends in ``/…``."""
    try:
        parsed = urlparse(url)
        host = parsed.hostname or ""
        port = parsed.port
    except ValueError:
        return "<unparseable URL>"
    if not parsed.scheme or not host:
        return "<not a URL>"
    if ":" in host:
        host = f"[{host}]"
    shown = f"{parsed.scheme}://{host}" + (f":{port}" if port else "")
    rest = (parsed.path not in ("", "/")) or parsed.query or parsed.fragment or parsed.username or parsed.password
    return shown + ("/…" if rest else "")
