"""The published OpenAPI document is accurate: one schema per name, one entry per status,
422 wherever input can be wrong, and a docs page that renders it."""

from __future__ import annotations

import json
import types
import typing
from collections import defaultdict

import pytest
import yaml
from django.test import Client
from pydantic import BaseModel


def openapi_text() -> bytes:
    response = Client().get("/api/openapi.json")
    assert response.status_code == 200
    return response.content


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    keys = [key for key, _ in pairs]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    assert not duplicated, f"duplicated keys {duplicated} in an object with keys {keys}"
    return dict(pairs)


class StrictLoader(yaml.SafeLoader):
    """Swagger UI reads the document as YAML and refuses a mapping key seen twice."""

    def construct_mapping(self, node, deep=False):
        keys = [self.construct_object(key, deep=deep) for key, _ in node.value]
        duplicated = sorted({str(k) for k in keys if keys.count(k) > 1})
        assert not duplicated, f"duplicated mapping key(s) {duplicated}"
        return super().construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                             StrictLoader.construct_mapping)


def test_document_has_no_duplicated_keys_as_json_or_yaml():
    text = openapi_text()
    json.loads(text, object_pairs_hook=_no_duplicates)
    yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


def _models_in(annotation, found: set[type[BaseModel]]) -> None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in found:
            return
        found.add(annotation)
        for field in annotation.model_fields.values():
            _models_in(field.annotation, found)
        return
    for arg in typing.get_args(annotation):
        _models_in(arg, found)
    if isinstance(annotation, types.UnionType):
        for arg in annotation.__args__:
            _models_in(arg, found)


def test_every_schema_name_belongs_to_one_model():
    """Ninja files schemas under the class name: two classes of one name publish one of
    them, and the other's responses then fail their published schema."""
    from mailroom.api.site import api

    found: set[type[BaseModel]] = set()
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                for model in operation.response_models.values():
                    _models_in(model, found)
                for model in operation.models:
                    _models_in(model, found)
    by_name: dict[str, set[str]] = defaultdict(set)
    for model in found:
        by_name[model.__name__].add(f"{model.__module__}.{model.__qualname__}")
    clashes = {name: sorted(where) for name, where in by_name.items() if len(where) > 1}
    assert not clashes
    assert {"EmailOut", "MessageOut", "PreviewOut"} <= set(by_name)  # the walk found them


def test_every_published_schema_is_the_one_its_model_produces():
    from mailroom.api.site import api

    schemas = json.loads(openapi_text())["components"]["schemas"]
    found: set[type[BaseModel]] = set()
    for _prefix, router in api._routers:
        for path_view in router.path_operations.values():
            for operation in path_view.operations:
                for model in operation.response_models.values():
                    _models_in(model, found)
    for model in found:
        if model.__name__ in schemas:
            published = set(schemas[model.__name__].get("properties", {}))
            assert published == set(model.model_fields), model.__name__


METHODS = {"get", "post", "put", "patch", "delete"}


def operations():
    document = json.loads(openapi_text())
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def test_422_is_documented_wherever_input_can_be_wrong():
    missing = [name for name, op in operations()
               if (op.get("parameters") or op.get("requestBody")) and "422" not in op["responses"]]
    assert not missing


def test_error_statuses_point_at_the_error_shape():
    for name, operation in operations():
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorOut"}, (name, status)
        if name.startswith(("POST", "PATCH", "PUT")):
            assert "413" in operation["responses"], name


def test_an_operation_that_takes_no_input_documents_no_422():
    me = dict(operations())["GET /api/v1/me"]
    assert "422" not in me["responses"] and "401" in me["responses"]


@pytest.mark.django_db
def test_docs_page_loads_the_document_with_local_assets(bob):
    from tests.conftest import PASSWORD

    client = Client()
    assert client.login(username="bob", password=PASSWORD)
    page = client.get("/api/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/api/openapi.json" in html
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/api/docs/assets/{asset}" in html
        assert client.get(f"/api/docs/assets/{asset}").status_code == 200
