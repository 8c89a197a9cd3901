"""Every 4xx body names the problem: DRF's own errors (``{"field": ["..."]}`` or
``{"detail": "..."}``) as they are, and a service's ``ValidationError`` (whose message
names the entry and field, e.g. ``chain 5 (x).strategy: max_hops: 7 is above the maximum
4``) as ``{"detail": message}`` with status 400; an unknown row is a 404 naming it."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler


def handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, DjangoValidationError):
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ObjectDoesNotExist):
        return Response({"detail": str(exc) or "not found"}, status=status.HTTP_404_NOT_FOUND)
    return exception_handler(exc, context)
