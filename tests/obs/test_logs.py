"""Log lines (arbbot.obs.logs): one JSON event a line with the work's context and the
trace id; readable lines for a terminal; never a secret, wherever in the record it is."""

from __future__ import annotations

import io
import json
import logging
from typing import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from arbbot import obs
from arbbot.obs import logs
from tests.e2e.test_secrets_never_leak import EXAMPLE_KEY, find_key, key_forms


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.formatter("json"))
    logger = logging.getLogger("tests.obs.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logs.clear()
    try:
        yield logger, stream, handler
    finally:
        logger.removeHandler(handler)
        logs.clear()


def lines(stream: io.StringIO) -> list[dict]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_one_json_event_a_line_with_context_and_trace_id(capture) -> None:  # type: ignore[no-untyped-def]
    logger, stream, _ = capture
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        obs.bind(chain=31337, block=12)
        with obs.scope("item", path_id="abc123"):
            try:
                raise ValueError("boom\nsecond line")
            except ValueError:
                logger.exception("execution of %s failed", "abc123", extra={"attempt": 2})
        logger.info("after the item")
    first, second = lines(stream)
    assert first["event"] == "execution of abc123 failed" and first["level"] == "error"
    assert first["logger"] == "tests.obs.logs" and first["attempt"] == 2
    assert (first["chain"], first["block"], first["path_id"]) == (31337, 12, "abc123")
    assert first["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert "ValueError: boom" in first["exception"] and "timestamp" in first
    assert "path_id" not in second and second["block"] == 12  # the scope's field ended with it


def test_console_lines_are_readable(capture) -> None:  # type: ignore[no-untyped-def]
    logger, stream, handler = capture
    handler.setFormatter(logs.formatter("console"))
    obs.bind(chain=1, block=7)
    logger.warning("nonce gap on %s", "0xabc")
    line = stream.getvalue()
    assert line.count("\n") == 1 and not line.lstrip().startswith("{")
    assert "nonce gap on 0xabc" in line and "chain=1" in line and "block=7" in line


def test_secrets_are_redacted_wherever_they_are(capture) -> None:  # type: ignore[no-untyped-def]
    logger, stream, _ = capture
    logs.register_secrets(EXAMPLE_KEY)
    digits = EXAMPLE_KEY[2:]
    signed_tx = "0x02f8b1827a69" + "ab" * 180
    logger.info("loaded key %s", EXAMPLE_KEY.upper(), extra={"key_b64": key_forms(EXAMPLE_KEY)["base64"].decode()})
    logger.info("bare %s and decimal %s", digits, key_forms(EXAMPLE_KEY)["decimal"].decode())
    logger.info("connect", extra={"password": "hunter2-long", "db": "postgresql://arbbot:s3cr3t-pw@db:5432/x"})
    logger.info('config {"private_key": "0x%s", "api_key": "k-123456"} Authorization: Bearer tok-987654', "11" * 32)
    logger.info("sending %s", signed_tx, extra={"raw_tx": signed_tx})
    try:
        raise RuntimeError(f"could not sign with {EXAMPLE_KEY}")
    except RuntimeError:
        logger.exception("failed")
    text = stream.getvalue()
    assert not find_key(text.lower().encode(), EXAMPLE_KEY), text
    for secret in ("hunter2-long", "s3cr3t-pw", "11" * 32, "k-123456", "tok-987654", "ab" * 100):
        assert secret not in text, secret
    events = lines(stream)
    assert events[2]["password"] == logs.REDACTED and events[2]["db"] == f"postgresql://arbbot:{logs.REDACTED}@db:5432/x"
    assert events[4]["event"] == "sending 0x02f8b1827a…(186 bytes)" and events[4]["raw_tx"] == logs.REDACTED
    assert "could not sign with" in events[5]["exception"]


def test_the_search_would_see_an_unredacted_key() -> None:
    """Not vacuous: the same search finds the key in a line no formatter touched."""
    assert find_key(f"key {EXAMPLE_KEY}".lower().encode(), EXAMPLE_KEY)


def test_settings_register_the_signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    from arbbot.config import get_settings

    key = "0x" + "5e" * 32
    monkeypatch.setenv("ARBBOT_SIGNER_KEY", key)
    get_settings()
    assert logs.redact_text(f"k={key[2:].upper()}") == f"k={logs.REDACTED}"


def test_structured_extras_stay_out_of_the_line(capture) -> None:  # type: ignore[no-untyped-def]
    """Celery logs each task with ``extra={"data": {...args, kwargs, result}}``: a block's
    whole pool states would land in every line."""
    logger, stream, _ = capture
    logger.info("Task %s succeeded", "workers.tasks.path.find",
                extra={"data": {"args": "(" + "x" * 5000 + ")"}, "note": "n" * 300, "count": 3})
    (event,) = lines(stream)
    assert "data" not in event and event["count"] == 3 and len(event["note"]) == 201
