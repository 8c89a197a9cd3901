"""Django settings. The environment is read here and in ``arbbot.config`` only."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from arbbot.config import get_settings

BASE_DIR = Path(__file__).resolve().parent.parent
ARBBOT = get_settings()

# ------------------------------------------------------------------ security (safe by default)
# DEBUG is off unless asked for; a development SECRET_KEY (none, or a placeholder) is
# refused unless ARBBOT_DEVNET=1 says this process runs on the embedded devnet; hosts are
# listed, never "*". Behind the TLS ingress, DJANGO_SECURE_PROXY_SSL_HEADER names the header
# the proxy sets (e.g. X-Forwarded-Proto) and DJANGO_CSRF_TRUSTED_ORIGINS its origins.
DEBUG = os.environ.get("DJANGO_DEBUG", "0") == "1"
DEVNET = os.environ.get("ARBBOT_DEVNET", "0") == "1"
DEV_SECRET_KEY = "dev-only-insecure-key-not-for-production"
_PLACEHOLDER_KEYS = ("", DEV_SECRET_KEY, "change-me-to-50-random-characters", "REPLACE_ME", "dev-only-not-secret")


def _secret_key(value: str, *, devnet: bool) -> str:
    """The SECRET_KEY in force: ``value`` if it is a real one; the development key only on
    the devnet; otherwise a refusal naming the variable."""
    if value not in _PLACEHOLDER_KEYS and not value.startswith("django-insecure") and len(value) >= 32:
        return value
    if devnet:
        return value or DEV_SECRET_KEY
    raise RuntimeError(
        "DJANGO_SECRET_KEY is unset, a placeholder or shorter than 32 characters; set a random one "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), or ARBBOT_DEVNET=1 on the local devnet"
    )


def _env_list(name: str, default: str = "") -> list[str]:
    return [v.strip() for v in os.environ.get(name, default).split(",") if v.strip()]


SECRET_KEY = _secret_key(os.environ.get("DJANGO_SECRET_KEY", ""), devnet=DEVNET)
ALLOWED_HOSTS = _env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")
if "*" in ALLOWED_HOSTS:
    raise RuntimeError("DJANGO_ALLOWED_HOSTS must list the host names, not '*'")
if os.environ.get("ARBBOT_POD_IP"):
    # Kubernetes: the kubelet's probes and Prometheus address the pod by its IP
    ALLOWED_HOSTS.append(os.environ["ARBBOT_POD_IP"])
CSRF_TRUSTED_ORIGINS = _env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
if os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER"):
    # only behind a proxy that sets this header itself (and strips it from clients)
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + os.environ["DJANGO_SECURE_PROXY_SSL_HEADER"].upper().replace("-", "_"), "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # throttled login: counts failures, refuses while locked out
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("ARBBOT_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = 0.25  # hours: a locked-out user and address may try again after 15 minutes
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_VERBOSE = False  # no "AXES: BEGIN ..." line on every manage.py command's stderr
# static files: collected into the image (docker/Dockerfile) and served by whitenoise with
# DEBUG off; on the devnet (make demo) straight from the apps, without collecting
WHITENOISE_USE_FINDERS = DEBUG or DEVNET
# Prometheus' scrape of /metrics: ``Authorization: Bearer <ARBBOT_METRICS_TOKEN>`` (or a
# viewer's session or API token); empty: only those
METRICS_TOKEN = os.environ.get("ARBBOT_METRICS_TOKEN", "")
AXES_IPWARE_PROXY_COUNT = 1 if os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER") else 0

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "webapp.core",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "webapp.core.roles.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
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
        # a reused connection is checked before its next use (a worker skips the check for
        # a connection whose socket is quiet: workers.celery_app._db_between_tasks)
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
# The console's browser libraries, pinned in package.json and served from our own static
# files (collectstatic copies them into the image; never a CDN): htmx, uPlot.
STATICFILES_DIRS = [
    ("vendor/htmx", ARBBOT.node_modules / "htmx.org" / "dist"),
    ("vendor/uplot", ARBBOT.node_modules / "uplot" / "dist"),
]
# The console's links to the fleet's other tools (compose publishes them on these ports)
CONSOLE_LINKS = {
    "Flower": os.environ.get("ARBBOT_FLOWER_URL", "http://127.0.0.1:5555"),
    "Grafana": os.environ.get("ARBBOT_GRAFANA_URL", "http://127.0.0.1:3000"),
    "Jaeger": os.environ.get("ARBBOT_JAEGER_URL", "http://127.0.0.1:16686"),
}

# ------------------------------------------------------------------ REST API (webapp/core/api)
# Session auth for people (the browser, with CSRF), tokens for machines
# (``Authorization: Token ...``, created by ``manage.py arbbot roles token USER``).
# Every endpoint needs a login; roles are Django groups (webapp.core.roles).
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    # the token first: its challenge makes an anonymous request a 401 (session auth has none)
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["webapp.core.roles.RolePermission"],
    "DEFAULT_PAGINATION_CLASS": "webapp.core.api.pagination.Cursor",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "webapp.core.api.errors.handler",
    "COERCE_DECIMAL_TO_STRING": True,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "arbbot API",
    "DESCRIPTION": "Read the fleet's state and history; steer it (kill switch, modes, limits, configuration). "
    "uint256 amounts are decimal strings. Authenticate with a session or `Authorization: Token <key>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "webapp.core.api.schema.add_error_responses",
    ],
    "SERVE_PERMISSIONS": ["webapp.core.roles.RolePermission"],
    # Swagger UI from our own static files (drf-spectacular-sidecar), never a CDN
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
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
