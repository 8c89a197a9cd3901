"""The ``python manage.py arbbot <group> ...`` command line, one module per group.

Each module here defines ``register(subparsers)``: it adds its group's parser (with
``help=``) and sub-commands, and sets ``handler`` on each parser it adds (``func(opts,
out) -> int``, the exit code; ``out`` writes a line to stdout). The dispatcher
(``webapp.core.management.commands.arbbot``) finds the modules by themselves, so a new
group is a new module and nothing else. A handler raises ``CliError`` for bad input or a
refused action: the message is printed and the exit code is 2 (bad input) or 1 (failed).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


class CliError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def register_all(subparsers: Any) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(subparsers)
