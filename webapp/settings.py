"""Django settings. The environment is read here and in ``arbbot.config`` only."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from arbbot.config import get_settings

BASE_DIR = Path(__file__).resolve().parent.parent
ARBBOT = get_settings()

DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-not-for-production"
ALLOWED_HOSTS = [h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "*").split(",") if h]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "webapp.core",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]


def _database(url: str) -> dict[str, object]:
    u = urlparse(url)
    if u.scheme not in ("postgres", "postgresql"):
        raise RuntimeError(f"ARBBOT_DATABASE_URL must be a postgresql:// URL, got scheme {u.scheme!r}")
    name = os.environ.get("ARBBOT_DATABASE_NAME") or u.path.lstrip("/") or "arbbot"
    db: dict[str, object] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(u.username or "postgres"),
        "PASSWORD": unquote(u.password or ""),
        "HOST": u.hostname or "127.0.0.1",
        "PORT": str(u.port or 5432),
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
    # Each test run gets its own database: several runs (developers, CI) share one server.
    db["TEST"] = {"NAME": os.environ.get("ARBBOT_TEST_DATABASE_NAME") or f"test_{name}_{os.getpid()}"}
    return db


DATABASES = {"default": _database(ARBBOT.database_url)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}

# --- logging and tracing (issue 17, observability) -----------------------------------------
# Log lines: one event a line, JSON in production (ARBBOT_LOG_FORMAT=json, or auto off a
# terminal), secrets redacted (arbbot.obs.logs). Traces: off unless the standard OTEL_*
# variables ask for an exporter; the web process instruments Django in webapp/wsgi.py, the
# workers instrument Celery in workers/celery_app.py (arbbot.obs.tracing).
from arbbot.obs.logs import logging_config, register_secrets  # noqa: E402

LOGGING = logging_config(ARBBOT.log_format, ARBBOT.log_level)
register_secrets(SECRET_KEY)  # never in a log line (the signing keys are registered by arbbot.config)
# --- end of logging and tracing -----------------------------------------------------------
