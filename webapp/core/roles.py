"""Who may do what: the three roles (Django groups) and the permissions they carry, and the
checks every page and API endpoint applies.

- viewer: reads every page and API endpoint (``core.view_console``);
- operator: also steers the fleet: kill switch, a chain's mode, risk limits and strategy
  (``core.operate_fleet``);
- admin: also changes the configuration: chains, DEXes, tokens, pool exclusions
  (``core.configure_fleet``), and may use the Django admin.

``roles_setup`` creates the groups and their permissions (idempotent; run by
``manage.py arbbot roles setup`` and after every ``migrate``). A superuser holds every
permission. Anonymous requests never reach a view: pages redirect to the login, the API
answers 401 (``LoginRequiredMiddleware``, DRF's authentication).
"""

from __future__ import annotations

import hmac
from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware as _DjangoLoginRequired
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS, BasePermission

VIEW = "core.view_console"
OPERATE = "core.operate_fleet"
CONFIGURE = "core.configure_fleet"

#: role -> the permissions its group holds (codenames of the ``core`` app)
ROLES: dict[str, tuple[str, ...]] = {
    "viewer": ("view_console",),
    "operator": ("view_console", "operate_fleet"),
    "admin": ("view_console", "operate_fleet", "configure_fleet"),
}
#: the Django admin's own model permissions the admin role adds (configuration models)
ADMIN_MODELS = ("chain", "dex", "token", "pool", "strategy", "poolfilter")


def roles_setup() -> dict[str, int]:
    """Create (or repair) the three groups with exactly their permissions; returns each
    group's permission count."""
    from django.contrib.auth.models import Group, Permission
    from django.contrib.contenttypes.models import ContentType

    from webapp.core.models import Chain

    chain_type = ContentType.objects.get_for_model(Chain)
    labels = {
        "view_console": "Can read the console (pages and API)",
        "operate_fleet": "Can steer the fleet (kill switch, modes, risk limits)",
        "configure_fleet": "Can change the configuration (chains, DEXes, tokens)",
    }
    perms = {
        code: Permission.objects.get_or_create(content_type=chain_type, codename=code, defaults={"name": name})[0]
        for code, name in labels.items()
    }
    admin_model_perms = list(
        Permission.objects.filter(
            content_type__app_label="core", content_type__model__in=ADMIN_MODELS,
            codename__regex=r"^(add|change|delete|view)_",
        )
    )
    out: dict[str, int] = {}
    for role, codes in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = [perms[c] for c in codes] + (admin_model_perms if role == "admin" else [])
        group.permissions.set(wanted)
        out[role] = len(wanted)
    return out


def required_permission(view: Any, method: str) -> str:
    """The permission a request needs: reading needs ``VIEW``; a write needs the view's
    ``write_permission`` (``OPERATE`` unless it says otherwise)."""
    if method in SAFE_METHODS:
        return VIEW
    return getattr(view, "write_permission", OPERATE)


class RolePermission(BasePermission):
    """DRF: authenticated, and holding the permission ``required_permission`` names;
    anonymous gets 401 (the token authenticator's challenge), a missing role 403."""

    message = "your role does not allow this; ask an admin for the role that does"

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        need = required_permission(view, request.method)
        if not user.has_perm(need):
            self.message = f"your role does not allow this: it needs the permission {need!r}"
            return False
        return True


SCRAPE = "metrics-scrape"


class ScrapeToken(BaseAuthentication):
    """``Authorization: Bearer <settings.METRICS_TOKEN>``: Prometheus' scrape of /metrics
    and nothing else (no user; ``ViewOrScrape`` lets it read the metrics only)."""

    def authenticate(self, request: Any) -> tuple[Any, str] | None:
        from django.conf import settings
        from django.contrib.auth.models import AnonymousUser

        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.startswith("Bearer "):
            return None
        if settings.METRICS_TOKEN and hmac.compare_digest(header[7:].strip(), settings.METRICS_TOKEN):
            return AnonymousUser(), SCRAPE
        raise AuthenticationFailed("invalid metrics bearer token")

    def authenticate_header(self, request: Any) -> str:
        return "Bearer"


class ViewOrScrape(RolePermission):
    def has_permission(self, request: Any, view: Any) -> bool:
        if request.auth == SCRAPE:
            return request.method in SAFE_METHODS
        return super().has_permission(request, view)


class LoginRequiredMiddleware(_DjangoLoginRequired):
    """Django's: every page needs a login (anonymous: a redirect to it), except views marked
    ``login_not_required`` (the login page, ``/healthz``). A DRF view (the API,
    ``/metrics``) authenticates itself (a session or a token) and answers 401, so it is
    left to DRF here."""

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> Any:
        from rest_framework.views import APIView

        cls = getattr(view_func, "cls", None)
        if isinstance(cls, type) and issubclass(cls, APIView):
            return None  # its own authentication and RolePermission
        return super().process_view(request, view_func, view_args, view_kwargs)
