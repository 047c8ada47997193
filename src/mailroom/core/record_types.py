"""The registry of business record types that mail attaches to.

Aliases, templates, custom KPIs and the API list record types from here, so none of them needs
to know each business app. Apps register in their AppConfig.ready().
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models


@dataclass(frozen=True)
class RecordType:
    key: str  # "crm.lead": app_label.model_name
    label: str
    label_plural: str
    model: type[models.Model]
    default_alias: str = ""  # local part such as "sales"; "" when mail never creates one
    template_fields: tuple[str, ...] = ()  # dotted paths templates may read
    api_fields: tuple[str, ...] = ()  # writable through the API
    api_slug: str = ""  # URL segment in /api/v1/<slug>/

    @property
    def slug(self) -> str:
        return self.api_slug or self.model._meta.model_name + "s"


_REGISTRY: dict[str, RecordType] = {}


def register(record_type: RecordType) -> RecordType:
    if record_type.key in _REGISTRY and _REGISTRY[record_type.key] != record_type:
        raise ValueError(f"Record type {record_type.key} is registered twice.")
    _REGISTRY[record_type.key] = record_type
    return record_type


def all_types() -> list[RecordType]:
    return list(_REGISTRY.values())


def get(key: str) -> RecordType:
    try:
        return _REGISTRY[key]
    except KeyError:
        raise LookupError(f"Unknown record type {key!r}") from None


def for_model(model: type[models.Model] | models.Model) -> RecordType | None:
    return _REGISTRY.get(model._meta.label_lower)
