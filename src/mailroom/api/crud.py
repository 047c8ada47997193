"""A CRUD factory: list/get/create/update/delete endpoints for a company-owned model that its
app's service writes.

`add_crud_routes(router, Crud(...))` adds five operations under `Crud.path`:

- `GET {path}` — a page (`limit`, `offset`), `q` searching one field, exact filters named
  by the filters schema, rows of the caller's companies only (`for_user`);
- `POST {path}` — a new row (its company: `company_id`, else the caller's current one);
- `GET/PATCH/DELETE {path}/{id}` — one row; ids bounded to positive 64-bit integers, rows of
  other companies answer 404 exactly like rows that do not exist.

Every write goes through the service's save function (`save(row, actor=user)`: permission
check, full_clean, audit row) or delete function (`delete(row, actor=user)`); a
ValidationError it raises becomes a 422 naming the fields (409 on delete). Errors have the
API's one shape (`api.errors`).

No `from __future__ import annotations` here: ninja reads the view functions' annotations,
which name schemas passed in at runtime, so they must be real objects.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from ninja import Path, Query, Router, Schema, Status
from ninja.responses import codes_4xx
from pydantic import Field, create_model

from mailroom.api import fields as F
from mailroom.api import writing
from mailroom.api.auth import actor, require_perm
from mailroom.api.errors import ApiError, ErrorOut, FieldErrors, django_errors, field_error
from mailroom.core.models import User

ERRORS = {codes_4xx: ErrorOut}
OPERATIONS = ("list", "create", "get", "update", "delete")


class Page(Schema):
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=10_000_000)


def row_id(description: str = "The row's id.") -> Any:
    """The `{id}` path parameter: a positive 64-bit integer, so no id reaches the database
    in a shape it would refuse."""
    return Path(..., ge=1, le=F.MAX_ID, description=description)


def list_schema(name: str, item: type[Schema]) -> type[Schema]:
    """`{count, limit, offset, items}` around `item`."""
    return create_model(name, __base__=Schema, count=(int, ...), limit=(int, ...),
                        offset=(int, ...), items=(list[item], ...))


def page(queryset: models.QuerySet, limit: int, offset: int,
         out: Callable[[models.Model], dict]) -> dict[str, Any]:
    count = queryset.count()
    rows = queryset[offset:offset + limit]
    return {"count": count, "limit": limit, "offset": offset, "items": [out(r) for r in rows]}


def reference(user: User, model: type[models.Model], pk: int, company_id: int,
              field_name: str) -> models.Model:
    """A row the new or changed one points at: visible to the caller and of the same
    company; otherwise one answer for 'missing' and 'someone else's'."""
    row = writing.visible(model, user).filter(pk=pk, company_id=company_id).first()
    if row is None:
        raise field_error(field_name, f"No {model._meta.verbose_name} with id {pk} in this "
                                      f"company.")
    return row


def apply_fields(user: User, row: models.Model, data: dict[str, Any]) -> None:
    """The default way a payload changes a row: each sent field set as is; null refused."""
    for name, value in data.items():
        if value is None:
            raise field_error(name, "This field cannot be null.")
        setattr(row, name, value)


def new_in_company(model: type[models.Model]) -> Callable[[User, dict[str, Any]], models.Model]:
    """The default new row: in the company the payload's `company_id` names (taken out of
    the data), else the caller's current one."""
    def new_row(user: User, data: dict[str, Any]) -> models.Model:
        return model(company_id=writing.company_for_create(user, data.pop("company_id", None)))
    return new_row


@dataclass
class Crud:
    """What the factory needs to know about one model's endpoints."""

    model: type[models.Model]
    path: str  # "/alias-domains"
    operation_prefix: str  # operation ids "<prefix>_list", "<prefix>_get"…
    url_names: tuple[str, str]  # ("domain", "domains"): list_domains, get_domain…
    out: type[Schema]
    create_in: type[Schema]
    patch_in: type[Schema]
    filters: type[Page]  # every field but limit, offset and q is an exact filter
    list_out: type[Schema]
    to_out: Callable[[models.Model], dict]
    save: Callable[..., models.Model]  # save(row, actor=user), raises ValidationError
    delete: Callable[..., None]  # delete(row, actor=user), raises ValidationError
    summaries: dict[str, str]  # operation ("list", "create", …) -> summary
    descriptions: dict[str, str] = field(default_factory=dict)
    ordering: tuple[str, ...] = ("pk",)
    search: str = ""  # the field `q` searches (icontains)
    related: tuple[str, ...] = ()  # select_related on lists
    rename: dict[str, str] = field(default_factory=dict)  # model names -> API names
    # (field, message) when the service meets a value of the wrong kind (TypeError, …)
    wrong_type: tuple[str | None, str] = (None, "A value has the wrong type for its field.")
    new_row: Callable[[User, dict[str, Any]], models.Model] | None = None
    apply: Callable[[User, models.Model, dict[str, Any]], None] = apply_fields

    def visible(self, user: User) -> models.QuerySet:
        require_perm(user, self.model, "view")
        return writing.visible(self.model, user)

    def get(self, user: User, pk: int) -> models.Model:
        row = self.visible(user).filter(pk=pk).first()
        if row is None:
            raise ApiError(404, f"No such {self.model._meta.verbose_name}.")
        return row

    def write(self, row: models.Model, user: User) -> models.Model:
        try:
            return self.save(row, actor=user)
        except ValidationError as exc:
            raise FieldErrors(django_errors(exc, self.rename)) from None
        except (TypeError, ValueError, OverflowError):
            name, message = self.wrong_type
            raise ApiError(422, message, name) from None

    def remove(self, row: models.Model, user: User) -> None:
        try:
            self.delete(row, actor=user)
        except ValidationError as exc:
            raise ApiError(409, " ".join(exc.messages)) from None


def add_crud_routes(router: Router, crud: Crud) -> None:
    Out, ListOut, CreateIn, PatchIn, Filters = (  # noqa: N806 - schema classes
        crud.out, crud.list_out, crud.create_in, crud.patch_in, crud.filters)
    new_row = crud.new_row or new_in_company(crud.model)

    def list_rows(request, filters: Query[Filters]):
        queryset = crud.visible(actor(request))
        if crud.related:
            queryset = queryset.select_related(*crud.related)
        wanted = filters.model_dump(exclude_none=True)
        limit, offset = wanted.pop("limit"), wanted.pop("offset")
        q = wanted.pop("q", None)
        for name, value in wanted.items():
            queryset = queryset.filter(**{name: value})
        if q and crud.search:
            queryset = queryset.filter(**{f"{crud.search}__icontains": q.strip()})
        return page(queryset.order_by(*crud.ordering), limit, offset, crud.to_out)

    def create_row(request, payload: CreateIn):
        user = actor(request)
        require_perm(user, crud.model, "add")
        data = payload.model_dump(exclude_unset=True)
        row = new_row(user, data)
        crud.apply(user, row, data)
        crud.write(row, user)
        return Status(201, crud.to_out(row))

    def get_row(request, id: int = row_id()):
        return crud.to_out(crud.get(actor(request), id))

    def update_row(request, payload: PatchIn, id: int = row_id()):
        user = actor(request)
        row = crud.get(user, id)
        crud.apply(user, row, payload.model_dump(exclude_unset=True))
        crud.write(row, user)
        return crud.to_out(row)

    def delete_row(request, id: int = row_id()):
        user = actor(request)
        crud.remove(crud.get(user, id), user)
        return Status(204, None)

    one, many = crud.url_names
    views = {
        "list": (crud.path, "GET", list_rows, {200: ListOut}, f"list_{many}"),
        "create": (crud.path, "POST", create_row, {201: Out}, f"create_{one}"),
        "get": (f"{crud.path}/{{id}}", "GET", get_row, {200: Out}, f"get_{one}"),
        "update": (f"{crud.path}/{{id}}", "PATCH", update_row, {200: Out}, f"update_{one}"),
        "delete": (f"{crud.path}/{{id}}", "DELETE", delete_row, {204: None}, f"delete_{one}"),
    }
    for operation in OPERATIONS:
        path, method, view, response, url_name = views[operation]
        router.add_api_operation(
            path, [method], view, response={**response, **ERRORS},
            operation_id=f"{crud.operation_prefix}_{operation}",
            summary=crud.summaries[operation], description=crud.descriptions.get(operation),
            url_name=url_name)
