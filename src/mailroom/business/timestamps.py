"""When a record reached a state: `won_at`, `sent_at`, `confirmed_at`, `paid_at`, `done_at`.

Digest KPIs count "orders confirmed last week" by these stamps. They are set in the model's
`save()`, so every writer (services, the mail router, the API, a bulk script calling save)
keeps them right without knowing about digests.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


def stamp(record: models.Model, field: str, *, reached: bool, keep: bool = False) -> bool:
    """Set `field` to now when the record has `reached` the state and has no stamp yet; clear
    it when it left the state (unless `keep`). Returns whether the field changed."""
    current = getattr(record, field)
    if reached and current is None:
        setattr(record, field, timezone.now())
        return True
    if not reached and current is not None and not keep:
        setattr(record, field, None)
        return True
    return False


def with_stamps(kwargs: dict, changed: list[str]) -> dict:
    """`save()` kwargs that also write the stamps that changed when `update_fields` is given."""
    fields = kwargs.get("update_fields")
    if changed and fields is not None:
        kwargs["update_fields"] = {*fields, *changed}
    return kwargs
