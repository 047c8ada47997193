"""Who is calling: a per-user API key (Bearer or X-API-Key) or the browser session.

Keys are checked by `core.services.authenticate_api_key`; here we only refuse anything that
cannot be a key before it reaches the database (odd bytes, absurd lengths).
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import models
from ninja.security import APIKeyHeader, HttpBearer, SessionAuth

from mailroom.api.errors import ApiError
from mailroom.core import throttle
from mailroom.core.access import perm, require
from mailroom.core.models import User
from mailroom.core.roles import Role
from mailroom.core.services import authenticate_api_key

_KEY_SHAPE = re.compile(r"mr_[0-9a-f]{1,16}_[A-Za-z0-9_-]{1,200}", re.ASCII)


def user_for_key(request, key: str | None) -> User | None:
    """The key's user; a client that sent too many wrong keys is answered 429 until its
    lockout passes (core.throttle), whatever it sends."""
    if not key:
        return None
    if throttle.api_key_locked(request):
        raise ApiError(429, "Too many wrong API keys from your address: try again in "
                            f"{int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)} minutes.")
    user = authenticate_api_key(key.strip()) if _KEY_SHAPE.fullmatch(key.strip()) else None
    if user is None:
        throttle.api_key_failed(request)
    return user


class BearerKey(HttpBearer):
    """`Authorization: Bearer mr_…`"""

    def authenticate(self, request, token):
        return user_for_key(request, token)


class HeaderKey(APIKeyHeader):
    """`X-API-Key: mr_…`"""

    param_name = "X-API-Key"

    def authenticate(self, request, key):
        return user_for_key(request, key)


class BrowserSession(SessionAuth):
    """The admin session, for the browsable docs; unsafe methods need the CSRF token."""

    def __call__(self, request):
        # without a logged-in session there is nothing to protect: answer 401, not a CSRF 403
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        return super().__call__(request)

    def authenticate(self, request, key):
        user = request.user
        if user.is_authenticated and user.is_active:
            return user
        return None


AUTH = [BearerKey(), HeaderKey(), BrowserSession()]


def actor(request) -> User:
    return request.auth


# The API has no system caller: a missing user is refused like an anonymous one, never let
# through as core.access lets the system (actor None) through.

def require_perm(user: User, model: type[models.Model], action: str) -> None:
    """Model permissions come from the user's roles (see core.roles)."""
    require(user or AnonymousUser(), perm(model, action))


def require_administrator(user: User) -> None:
    require(user or AnonymousUser(), Role.ADMINISTRATOR,
            denied="Only administrators can delete records.")
