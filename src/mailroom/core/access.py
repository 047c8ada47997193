"""One answer to "may this actor do that?": `require(actor, perm_or_role, obj=None)`.

The services (routing, incoming, outgoing, templating, automation) and the API ask it before
they write. It raises `PermissionDenied` with the message the user reads: the API answers it
403 with that message, the admin shows it. The rules, in order:

- `actor` None is the system (migrations, the demo, the CLI, the router, the workers): allowed.
- An anonymous or inactive user holds nothing: refused with the `denied` message.
- `perm_or_role` is a Django permission (`"routing.change_alias"`, see `perm()`), checked
  with `has_perm` (superusers hold every permission), or a `Role`, checked with `has_role`
  (Administrators and superusers hold every role).
- With `obj`, the actor must belong to obj's company (`obj.company_id`; a `Company` is its
  own company), unless a superuser: refused with the `elsewhere` message.

Record access (`chatter.services.require_access`), managing users
(`core.services.require_user_manager`, audited refusals) and the connection-test budget
(`core.services.require_connection_test_budget`) are other questions and stay where they are.
"""

from __future__ import annotations

from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.db import models

from mailroom.core.models import Company
from mailroom.core.roles import Role


def perm(model: type[models.Model] | models.Model, action: str) -> str:
    """The Django permission for `action` ("view", "add", "change", "delete") on `model`:
    `perm(Alias, "change")` is "routing.change_alias"."""
    opts = model._meta
    return f"{opts.app_label}.{action}_{opts.model_name}"


def company_of(obj: models.Model) -> int | None:
    """The id of the company `obj` belongs to; a company belongs to itself."""
    if isinstance(obj, Company):
        return obj.pk
    return obj.company_id


def _default_denied(perm_or_role: str | Role) -> str:
    """"Your roles do not allow you to change aliases." for "routing.change_alias"."""
    if not isinstance(perm_or_role, Role):
        app_label, _, codename = perm_or_role.partition(".")
        action, _, model_name = codename.partition("_")
        try:
            model = apps.get_model(app_label, model_name)
        except (LookupError, ValueError):
            pass
        else:
            return f"Your roles do not allow you to {action} {model._meta.verbose_name_plural}."
    return "Your roles do not allow you to do this."


def allowed(actor, perm_or_role: str | Role) -> bool:
    """Whether `actor` (not None) holds the permission or the role."""
    if not getattr(actor, "is_authenticated", False) or not actor.is_active:
        return False
    if isinstance(perm_or_role, Role):
        return actor.has_role(perm_or_role)
    return actor.has_perm(perm_or_role)


def require(actor, perm_or_role: str | Role, obj: models.Model | None = None, *,
            denied: str | None = None, elsewhere: str | None = None) -> None:
    """Raise PermissionDenied unless `actor` holds `perm_or_role` and, given `obj`, belongs
    to obj's company. `denied` and `elsewhere` are the two refusals' messages; by default
    "Your roles do not allow you to change aliases." and "This alias belongs to another
    company."."""
    if actor is None:
        return  # the system
    if not allowed(actor, perm_or_role):
        raise PermissionDenied(denied or _default_denied(perm_or_role))
    if obj is not None and not actor.is_superuser and company_of(obj) not in actor.company_ids():
        raise PermissionDenied(elsewhere or
                               f"This {obj._meta.verbose_name} belongs to another company.")
