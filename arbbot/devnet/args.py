"""Command-line argument types shared by the devnet's commands and scripts (the relay
stand-in, ``scripts/demo.py``, ``scripts/demo_xchain.py``) and the benchmarks that run
on a devnet: each turns a bad value into argparse's own error, naming the value, before
anything starts."""

from __future__ import annotations

import argparse
from typing import Callable, TypeVar

T = TypeVar("T")


def _parsed(convert: Callable[[str], T], text: str, what: str) -> T:
    try:
        return convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not {what}: {text!r}") from None


def positive_float(text: str) -> float:
    """A number above 0 (``inf`` included: no end; ``nan`` refused)."""
    value = _parsed(float, text, "a number")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A number of 0 or more (``nan`` refused)."""
    value = _parsed(float, text, "a number")
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text!r}")
    return value


def at_least(least: int) -> Callable[[str], int]:
    """A whole number of at least ``least``."""

    def parse(text: str) -> int:
        value = _parsed(int, text, "a whole number")
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value

    return parse


positive_int = at_least(1)


def bps(text: str) -> int:
    """Basis points: a whole number 0..10000."""
    value = _parsed(int, text, "a whole number")
    if not 0 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be 0..10000 basis points, got {value}")
    return value


def port(text: str) -> int:
    """A TCP port, 0 meaning any free one."""
    value = _parsed(int, text, "a port number")
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535 (0: any free port), got {value}")
    return value


def port_pair(text: str) -> tuple[int, int]:
    """Two different TCP ports, ``A,B`` (neither 0: each names a node to start)."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"must be two ports, A,B, got {text!r}")
    a, b = (port(p.strip()) for p in parts)
    if 0 in (a, b) or a == b:
        raise argparse.ArgumentTypeError(f"must be two different ports above 0, got {text!r}")
    return a, b
