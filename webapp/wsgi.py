"""WSGI entry point (gunicorn webapp.wsgi:application; runserver loads it too).

Tracing (when ``OTEL_*`` asks for it): the SDK is installed and Django instrumented here,
before the handler loads its middleware; Celery's instrumentation too, so a task the web
app sends continues the request's trace."""

import os

from django.core.wsgi import get_wsgi_application

from arbbot.obs import tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
if tracing.configure("arbbot-web"):
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.django import DjangoInstrumentor

    DjangoInstrumentor().instrument()
    CeleryInstrumentor().instrument()
application = get_wsgi_application()
