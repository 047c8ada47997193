"""Which record types print as a PDF, with which template, file name and title.

Apps register here (in `DocumentsConfig.ready()`), so the PDF view, the admin buttons and
the composer's "Send by email" ask one place whether a record has a document, and none of
them needs to know the sales or invoicing apps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import models

Record = models.Model


@dataclass(frozen=True)
class DocumentSpec:
    model_label: str  # "sales.quotation": app_label.model_name, as `Model._meta.label_lower`
    template: str  # a Django template extending "documents/base.html"
    filename: Callable[[Record], str]  # "Quotation S00012.pdf"
    title: Callable[[Record], str]  # the heading: "Quotation", "Sales order", "Draft invoice"


_REGISTRY: dict[str, DocumentSpec] = {}


def register_document(
    model_label: str,
    *,
    template: str,
    filename: Callable[[Record], str],
    title: Callable[[Record], str],
) -> DocumentSpec:
    """Declare that records of `model_label` print with `template`.

    Registering the same label twice with different settings is a programming error, so it
    raises instead of letting the last app loaded win silently.
    """
    label = model_label.lower()
    spec = DocumentSpec(model_label=label, template=template, filename=filename, title=title)
    if label in _REGISTRY and _REGISTRY[label] != spec:
        raise ValueError(f"A document for {label} is registered twice.")
    _REGISTRY[label] = spec
    return spec


def spec_for_label(model_label: str) -> DocumentSpec | None:
    return _REGISTRY.get(model_label.lower())


def document_for(record: Record) -> DocumentSpec | None:
    """The document `record` prints as, or None when its type has none."""
    return _REGISTRY.get(record._meta.label_lower)


def has_document(record_or_model: Record | type[Record]) -> bool:
    """Accepts a model class or an instance: admin screens ask before they have a record."""
    return record_or_model._meta.label_lower in _REGISTRY


def all_documents() -> list[DocumentSpec]:
    return list(_REGISTRY.values())
