"""``python manage.py arbbot <group> <action> ...``: the operator's command line. The groups
live in ``webapp.core.cli`` (one module each); this only parses and dispatches."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webapp.core.cli import CliError, register_all


class Command(BaseCommand):
    help = "Operate arbbot: configuration, executor, backfill, kill switch, modes"

    def add_arguments(self, parser: CommandParser) -> None:
        groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
        register_all(groups)

    def handle(self, *args: Any, **opts: Any) -> None:
        handler = opts.get("handler")
        if handler is None:
            self.stderr.write(f"arbbot {opts['group']}: name an action (see --help)")
            sys.exit(2)
        try:
            code = handler(opts, self.stdout.write)
        except CliError as exc:
            self.stderr.write(f"arbbot {opts['group']}: {exc}")
            sys.exit(exc.code)
        except KeyboardInterrupt:
            self.stderr.write("interrupted")
            sys.exit(130)
        if code:
            sys.exit(code)
