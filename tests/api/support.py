"""Helpers shared by the API tests: an authenticated client, and sample rows and payloads
for any registered record type, built from its model so new types are covered unasked."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from decimal import Decimal
from typing import Any

import pytest
from django.db import models
from django.test import Client

from tests.conftest import make_user


def api_types() -> list:
    from mailroom.api.record_routes import api_record_types

    return api_record_types()


def type_ids() -> list[str]:
    return [rt.key for rt in api_types()]


def spec(key: str):
    from mailroom.api.specs import spec_for
    from mailroom.core import record_types

    return spec_for(record_types.get(key))


class Api:
    """A test client that sends one user's API key on every request."""

    def __init__(self, user, key: str | None = None) -> None:
        from mailroom.core.services import create_api_key

        self.user = user
        self.key = key or create_api_key(user, actor=user)[1]
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {self.key}"}

    def get(self, path: str, params: dict | None = None):
        return self.client.get(path, params or {}, headers=self.headers)

    def _send(self, method: str, path: str, data: Any):
        return getattr(self.client, method)(
            path, data=json.dumps(data, default=str), content_type="application/json",
            headers=self.headers)

    def post(self, path: str, data: Any):
        return self._send("post", path, data)

    def patch(self, path: str, data: Any):
        return self._send("patch", path, data)

    def delete(self, path: str):
        return self.client.delete(path, headers=self.headers)


def fields_named(response) -> list[str | None]:
    return [item["field"] for item in response.json()["detail"]]


@pytest.fixture
def api_as(db):
    made: dict[int, Api] = {}

    def factory(user) -> Api:
        if user.pk not in made:
            made[user.pk] = Api(user)
        return made[user.pk]

    return factory


@pytest.fixture
def gina(globex):
    """An Administrator of globex only."""
    return make_user("gina", [globex], "Administrator")


_serial = itertools.count(1)


def _user_model():
    from django.contrib.auth import get_user_model

    return get_user_model()


def make_row(model: type[models.Model], company, user, **overrides) -> models.Model:
    """A minimal saved row of `model` in `company`: required columns get plain values,
    required foreign keys get rows of their own (same company)."""
    if model is _user_model():
        return user
    values: dict[str, Any] = {}
    if any(f.name == "company" for f in model._meta.concrete_fields):
        values["company"] = company
    for f in model._meta.concrete_fields:
        if f.name in values or f.primary_key or f.name in overrides:
            continue
        if f.has_default() or f.blank or f.null or not f.editable:
            continue
        values[f.attname] = sample_value(f, company, user)
    values.update(overrides)
    return model.objects.create(**values)


def sample_value(f: models.Field, company, user) -> Any:
    if f.is_relation:
        return make_row(f.related_model, company, user).pk
    if f.choices:
        return f.flatchoices[0][0]
    if isinstance(f, models.BooleanField):
        return True
    if isinstance(f, models.DecimalField):
        return Decimal("1.00")
    if isinstance(f, models.FloatField):
        return 1.0
    if isinstance(f, models.IntegerField):
        return 1
    if isinstance(f, models.DateTimeField):
        return dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    if isinstance(f, models.DateField):
        return dt.date(2030, 1, 1)
    if "email" in f.name:
        return "someone@example.test"
    text = f"Sample {f.verbose_name} {next(_serial)}"  # unique, for unique constraints
    return text[: f.max_length] if f.max_length else text


def sample_payload(key: str, company, user) -> dict[str, Any]:
    """A valid create body: every required field, plus a recognisable label."""
    s = spec(key)
    payload: dict[str, Any] = {}
    for name, f in s.write_fields.items():
        if not (f.has_default() or f.blank or f.null):
            payload[name] = sample_value(f, company, user)
    label = text_field(key)
    if label is not None:
        payload[label] = f"Probe {s.label} {company.name}"[: s.write_fields[label].max_length]
    return payload


def text_field(key: str, *, required: bool = False) -> str | None:
    """A plain text field of the type (not email-like), to write and search."""
    s = spec(key)
    for name, f in s.write_fields.items():
        if f.is_relation or f.choices or "email" in name:
            continue
        if not isinstance(f, models.CharField | models.TextField):
            continue
        if required and (f.blank or f.has_default()):
            continue
        return name
    return None


def single_line_fields(key: str) -> list[str]:
    s = spec(key)
    return [name for name, f in s.write_fields.items()
            if isinstance(f, models.CharField) and not f.choices and not f.is_relation]


def company_fks(key: str) -> dict[str, models.Field]:
    """Foreign keys of a type that point at company-scoped rows (or users)."""
    s = spec(key)
    result = {}
    for name, f in s.fk_fields.items():
        related = f.related_model
        if related is _user_model() or any(
                x.name == "company" for x in related._meta.concrete_fields):
            result[name] = f
    return result


def create_via_api(api: Api, key: str, company, **extra) -> dict:
    payload = {**sample_payload(key, company, api.user), **extra}
    response = api.post(f"/api/v1/{spec(key).slug}", payload)
    assert response.status_code == 201, response.content
    return response.json()
