"""A benchmark's own PostgreSQL database (``ScratchDb``): created and migrated on entry,
dropped on exit, so a bench's rows never touch anyone's data (``bench.scale``, ``bench.ml.history``)."""

from __future__ import annotations

import os


class ScratchDb:
    """A database of its own, named ``<prefix>_<pid>``: Django set up on it (the devnet's
    settings unless the environment says otherwise), migrated, and dropped at the end."""

    def __init__(self, prefix: str) -> None:
        self.name = f"{prefix}_{os.getpid()}"

    def __enter__(self) -> ScratchDb:
        os.environ.setdefault("ARBBOT_DEVNET", "1")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
        os.environ["ARBBOT_TEST_DATABASE_NAME"] = self.name
        import django

        django.setup()
        from django.db import connection

        self.connection = connection
        self.old_name = connection.settings_dict["NAME"]
        connection.creation.create_test_db(verbosity=0, autoclobber=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.connection.creation.destroy_test_db(self.old_name, verbosity=0)
