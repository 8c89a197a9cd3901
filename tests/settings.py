"""The test run's Django settings: the project's own, on the devnet (tests run on anvil),
so the development SECRET_KEY is allowed (``webapp.settings`` refuses it elsewhere). Set
in the environment before the settings are read, so worker processes the tests start
inherit it."""

import os

os.environ.setdefault("ARBBOT_DEVNET", "1")

from webapp.settings import *  # noqa: E402,F403
