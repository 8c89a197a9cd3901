"""Field validators shared by models, the config loader and the API."""

from __future__ import annotations

import re
from urllib.parse import urlparse

from django.core.exceptions import ValidationError

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


def validate_address(value: str) -> None:
    if not isinstance(value, str) or not _ADDRESS.match(value):
        raise ValidationError(
            "%(value)r is not a valid EVM address (expected 0x followed by 40 hex digits).",
            code="invalid_address",
            params={"value": value},
        )


def validate_rpc_urls(value: str) -> None:
    urls = [u.strip() for u in value.replace("\n", ",").split(",") if u.strip()]
    if not urls:
        raise ValidationError("at least one RPC URL is required", code="no_rpc_url")
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme not in ("http", "https", "ws", "wss") or not parsed.netloc:
            raise ValidationError(
                "%(url)r is not an http(s)/ws(s) URL", code="invalid_rpc_url", params={"url": url}
            )
