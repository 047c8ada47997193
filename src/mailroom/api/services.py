"""The one write the API needs that no app service offers yet: deleting a business record.

Apps that need more (cancel instead of delete, cascade rules) provide
`<app>.services.delete_<model>(record, *, actor)`, which the API prefers.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import models, transaction

from mailroom.chatter.services import require_access
from mailroom.core.roles import Role
from mailroom.core.services import audit, snapshot


def delete_record(record: models.Model, *, actor) -> None:
    """Delete a record and its chatter (Administrators only), leaving an audit row behind,
    since the chatter that told its story goes with it."""
    require_access(actor, record)
    if actor is not None and not actor.has_role(Role.ADMINISTRATOR):
        raise PermissionDenied("Only administrators can delete records.")
    with transaction.atomic():
        before = snapshot(record)
        audit(f"{record._meta.label_lower}.delete", actor=actor, obj=record,
              company=getattr(record, "company", None), before=before)
        record.delete()
