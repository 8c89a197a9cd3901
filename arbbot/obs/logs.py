"""Log lines: the one formatter every process uses (web, workers and Celery's own loggers,
the follower, commands), the context fields each line carries, and redaction.

One event a line: JSON objects in production (``ARBBOT_LOG_FORMAT=json``, or ``auto`` when
the output is not a terminal), readable ``key=value`` lines on a terminal. Every line
carries ``timestamp``, ``level``, ``logger``, ``event`` and, where known, ``chain``,
``block``, ``path_id`` (bound by ``arbbot.obs.bind`` for the task or item at hand) and
``trace_id``/``span_id`` (the current OpenTelemetry span). Code logs through the standard
``logging`` module; this formatter turns each record into an event.

Never a secret: a field whose name says secret (``password``, ``private_key``, ...) is
replaced; in any text (the message, a value, a traceback) the secrets this process loaded
(``register_secrets``: the signing keys, in every form the e2e leak test searches for),
URL passwords, ``name=value`` pairs named like a secret and PEM private keys are replaced,
and long hex blobs (signed transactions, calldata) are cut to their head and length.
"""

from __future__ import annotations

import base64
import logging
import logging.config
import re
import sys
import threading
from typing import Any, Callable, MutableMapping

import structlog
from opentelemetry import trace

REDACTED = "[REDACTED]"

#: Field names whose values are never shown.
SECRET_NAME = re.compile(
    r"passw(or)?d|secret|private[_-]?key|signer[_-]?key|api[_-]?key|mnemonic|seed[_-]?phrase|"
    r"authorization|cookie|ciphertext|keystore|credential|raw[_-]?tx|signed[_-]?tx|^raw$",
    re.IGNORECASE,
)
#: In free text, ``name=value`` / ``"name": "value"`` pairs named like this.
_TEXT_NAME = (r"passw(?:or)?d|secret|private[_-]?key|signer[_-]?key|api[_-]?key|mnemonic|authorization|"
              r"ciphertext|raw[_-]?tx|signed[_-]?tx")
_TEXT_PATTERNS: list[tuple[re.Pattern[str], Any]] = [
    # scheme://user:password@host: keep the user, drop the password
    (re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]+@", re.IGNORECASE), r"\1:" + REDACTED + "@"),
    # password=..., "private_key": "...", secret: ...
    (re.compile(r"(\b\w*(?:" + _TEXT_NAME + r")\w*[\"']?\s*[:=]\s*[\"']?(?:(?:Bearer|Basic)\s+)?)"
                r"[^\s\"',;}&]+", re.IGNORECASE), r"\1" + REDACTED),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.DOTALL),
     REDACTED),
    # a signed transaction or calldata: its head and size are enough in a log line
    (re.compile(r"\b0x([0-9a-fA-F]{10})[0-9a-fA-F]{246,}"),
     lambda m: f"0x{m.group(1)}…({(len(m.group(0)) - 2) // 2} bytes)"),
]

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None


def register_secrets(*values: str) -> None:
    """Never show these values in a log line from now on. A hex key is also caught bare
    or ``0x``-prefixed in any case, and as base64, base64url or the decimal integer of its
    bytes. Values shorter than 8 characters are ignored (they would garble ordinary words)."""
    global _secret_re
    forms: set[str] = set()
    for value in values:
        value = (value or "").strip()
        if len(value) < 8:
            continue
        forms.add(value)
        digits = value[2:] if value[:2] in ("0x", "0X") else value
        if len(digits) % 2 == 0 and re.fullmatch(r"[0-9a-fA-F]+", digits):
            raw = bytes.fromhex(digits)
            forms |= {digits, base64.b64encode(raw).decode().rstrip("="),
                      base64.urlsafe_b64encode(raw).decode().rstrip("="), str(int.from_bytes(raw, "big"))}
    with _lock:
        if forms <= _secrets:
            return
        _secrets.update(forms)
        alternatives = sorted(_secrets, key=len, reverse=True)  # longest first: no partial leftovers
        _secret_re = re.compile("|".join(re.escape(s) for s in alternatives), re.IGNORECASE)


#: Cheap pre-checks: each pattern of ``_TEXT_PATTERNS`` runs only on text that may match it
#: (the ``name=value`` one costs ~50 µs a string otherwise).
_MAY_MATCH: list[Callable[[str], object]] = [
    lambda t: "://" in t,
    re.compile(_TEXT_NAME, re.IGNORECASE).search,
    lambda t: "PRIVATE KEY" in t,
    lambda t: len(t) > 256 and "0x" in t,
]


def redact_text(text: str) -> str:
    """``text`` with every secret this module knows of replaced."""
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for may_match, (regex, replacement) in zip(_MAY_MATCH, _TEXT_PATTERNS):
        if may_match(text):
            text = regex.sub(replacement, text)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if SECRET_NAME.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, (bytes, bytearray)):
        return redact_text(bytes(value).hex())
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_redact_value(key, v) for v in value]
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return redact_text(str(value))


def redact(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The structlog processor: every field, the rendered message and traceback included."""
    for key in list(event_dict):
        event_dict[key] = _redact_value(str(key), event_dict[key])
    return event_dict


def add_trace_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event_dict.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event_dict.setdefault("span_id", format(ctx.span_id, "016x"))
    return event_dict


# The fields a standard ``logging`` record carries anyway; anything else was passed as
# ``extra=`` and becomes a field of the event.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def add_extra(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Plain values passed as ``extra=`` become fields (strings cut at 200 characters).
    Structures are left out: Celery passes each task's arguments and result as ``data``
    (a whole block's pool states), which belong in no log line."""
    record = event_dict.get("_record")
    if record is not None:
        for key, value in vars(record).items():
            if key in _RECORD_FIELDS or key.startswith("_") or key in event_dict:
                continue
            if isinstance(value, str):
                event_dict[key] = value if len(value) <= 200 else value[:200] + "…"
            elif isinstance(value, (int, float, bool)) or value is None:
                event_dict[key] = value
    return event_dict


def _pre_chain() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_extra,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_trace_ids,
    ]


def json_lines(fmt: str, stream: Any = None) -> bool:
    """Whether ``fmt`` (``json``, ``console``, ``auto``) means JSON lines on ``stream``."""
    if fmt == "auto":
        stream = sys.stderr if stream is None else stream
        return not (hasattr(stream, "isatty") and stream.isatty())
    return fmt == "json"


def formatter(fmt: str = "auto") -> logging.Formatter:
    """The ``logging.Formatter`` of every handler (``logging.config`` factory: ``"()"``)."""
    _configure_structlog()
    json_out = json_lines(fmt)
    renderer: Any = (
        structlog.processors.JSONRenderer(default=str) if json_out
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    processors: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json_out:
        processors.append(structlog.processors.format_exc_info)
    processors += [redact, renderer]
    if not json_out:  # the console renderer formats the traceback itself: redact its output too
        processors.append(lambda _l, _m, line: redact_text(line))
    return structlog.stdlib.ProcessorFormatter(foreign_pre_chain=_pre_chain(), processors=processors)


def logging_config(fmt: str = "auto", level: str = "INFO") -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a process (Django's ``LOGGING``): one handler
    on stderr with ``formatter(fmt)`` at the root; every library's logger propagates to it."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"arbbot": {"()": "arbbot.obs.logs.formatter", "fmt": fmt}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "arbbot"}},
        "root": {"handlers": ["console"], "level": level},
        # Django's own config gives the development server's request lines a handler of
        # their own: they go through this formatter too
        "loggers": {"django.server": {"handlers": ["console"], "level": "INFO", "propagate": False}},
    }


def configure(fmt: str = "auto", level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(fmt, level))


def bind(**fields: Any) -> None:
    """Add fields (``chain``, ``block``, ``path_id``, ...) to every line this task or
    thread logs from now on; None values are left out."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in fields.items() if v is not None})


def bound(**fields: Any) -> Any:
    """``bind`` for the ``with`` block only."""
    return structlog.contextvars.bound_contextvars(**{k: v for k, v in fields.items() if v is not None})


def clear() -> None:
    structlog.contextvars.clear_contextvars()


_structlog_done = False


def _configure_structlog() -> None:
    """structlog's own loggers (``structlog.get_logger``) go through the same handler."""
    global _structlog_done
    if _structlog_done:
        return
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, structlog.stdlib.PositionalArgumentsFormatter(),
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _structlog_done = True

