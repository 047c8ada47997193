"""Which automation rules may fire when a record is saved, per company and record type,
remembered for a few seconds like the alias cache (routing.services): every record saved asks
— the inbound router creates hundreds a second — and rules change rarely.

The cache holds only what decides *whether* a rule fires (trigger, state, conditions); a
rule that matches is read again, with its template, before it fires, so an edited template or
a rule switched off is never acted on from memory. A change in this process clears the cache
at once and again when it commits; another process sees it within `TTL` seconds.
"""

from __future__ import annotations

import threading
import time

from django.db import transaction

from mailroom.automation.models import AutomationRule

TTL = 5.0
_FIELDS = ("id", "company_id", "record_type", "trigger", "state_field", "state_value",
           "conditions", "active")


class _RuleCache:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.generation = 0
        self.entries: dict[tuple[int, str], tuple[float, list[AutomationRule]]] = {}

    def clear(self) -> None:
        with self.lock:
            self.generation += 1
            self.entries = {}

    def for_saves(self, company_id: int, record_type: str) -> list[AutomationRule]:
        key = (company_id, record_type)
        now = time.monotonic()
        entry = self.entries.get(key)
        if entry is not None and now - entry[0] < TTL:
            return entry[1]
        generation = self.generation
        rules = list(AutomationRule.objects.filter(
            company_id=company_id, record_type=record_type, active=True,
            trigger__in=[AutomationRule.Trigger.CREATED, AutomationRule.Trigger.STATE],
        ).only(*_FIELDS).order_by("pk"))
        with self.lock:
            if generation == self.generation:  # not cleared while loading: keep it
                self.entries[key] = (now, rules)
        return rules


_cache = _RuleCache()


def rules_for_saves(company_id: int, record_type: str) -> list[AutomationRule]:
    """The active create/state rules of `company_id` for `record_type` (light copies)."""
    return _cache.for_saves(company_id, record_type)


def rules_changed(**_kwargs) -> None:
    """A rule was written: forget now (this transaction reads its own writes) and at
    commit (a reader that loaded the old rules meanwhile does not keep them)."""
    _cache.clear()
    transaction.on_commit(_cache.clear)


clear = _cache.clear
