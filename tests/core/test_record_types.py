"""Every business record type is registered, and its field lists name real fields.

Templates read `template_fields` by walking dotted paths and the API writes `api_fields`; a
typo in either would only show up when a customer's email renders blank or a write is lost.
"""

import pytest
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist
from django.db import models

from mailroom.chatter.models import MailThread
from mailroom.core import record_types

BUSINESS_TYPES = {
    "crm.lead": "leads",
    "helpdesk.ticket": "tickets",
    "recruitment.applicant": "applicants",
    "projects.task": "tasks",
    "sales.quotation": "quotations",
    "invoicing.invoice": "invoices",
}
SERVICE_ONLY = {  # state machines: moved by their own services, never written directly
    "sales.quotation": {"state", "amount_total", "ref"},
    "invoicing.invoice": {"state", "payment_state", "amount_paid", "amount_residual", "ref"},
}


def walk(model: type[models.Model], path: str) -> None:
    """Follow `partner.email` through relations; the last step is a field or a property."""
    *relations, last = path.split(".")
    for name in relations:
        field = model._meta.get_field(name)
        assert field.is_relation and not field.many_to_many, f"{path}: {name} is not a FK"
        model = field.related_model
    try:
        model._meta.get_field(last)
    except FieldDoesNotExist:
        assert isinstance(getattr(model, last, None), property), f"{path}: no {last}"


def test_every_business_app_is_registered_with_its_slug():
    registered = {rt.key: rt.slug for rt in record_types.all_types()}
    for key, slug in BUSINESS_TYPES.items():
        assert registered.get(key) == slug, key
    slugs = [rt.slug for rt in record_types.all_types()]
    assert len(slugs) == len(set(slugs))


@pytest.mark.parametrize("key", sorted(BUSINESS_TYPES))
def test_record_type_matches_its_model(key):
    record_type = record_types.get(key)
    model = record_type.model
    assert model is apps.get_model(key)
    assert record_types.for_model(model) is record_type
    assert issubclass(model, MailThread)
    assert model._meta.get_field("company").related_model._meta.label == "core.Company"
    assert record_type.label and record_type.label_plural
    for name in model.tracked_fields:
        model._meta.get_field(name)


@pytest.mark.parametrize("key", sorted(BUSINESS_TYPES))
def test_template_fields_exist(key):
    record_type = record_types.get(key)
    assert record_type.template_fields
    for path in record_type.template_fields:
        walk(record_type.model, path)


@pytest.mark.parametrize("key", sorted(BUSINESS_TYPES))
def test_api_fields_are_editable_columns(key):
    record_type = record_types.get(key)
    model = record_type.model
    assert record_type.api_fields
    for name in record_type.api_fields:
        field = next((f for f in model._meta.concrete_fields if f.attname == name), None)
        assert field is not None, f"{key}: {name} is not a column"
        assert field.editable, f"{key}: {name} is not editable"
        assert field.is_relation == name.endswith("_id"), f"{key}: FKs end in _id: {name}"
        assert field.name != "company"
    assert not SERVICE_ONLY.get(key, set()) & set(record_type.api_fields)


def test_default_aliases():
    aliases = {rt.key: rt.default_alias for rt in record_types.all_types()}
    assert aliases["helpdesk.ticket"] == "support"
    assert aliases["recruitment.applicant"] == "jobs"
    assert aliases["projects.task"] == "tasks"
    assert aliases["sales.quotation"] == aliases["invoicing.invoice"] == ""
    taken = [alias for alias in aliases.values() if alias]
    assert len(taken) == len(set(taken))
