"""Records through the API: partners, leads, and every other registered type (parametrized
over the registry), with validation errors that name the field."""

from decimal import Decimal

import pytest

from mailroom.business.crm.models import Lead
from mailroom.chatter.models import Message
from mailroom.contacts.models import Partner
from mailroom.core.models import AuditLog
from tests.api.support import (  # noqa: F401 - fixtures
    api_as,
    create_via_api,
    fields_named,
    sample_payload,
    single_line_fields,
    spec,
    text_field,
    type_ids,
)

pytestmark = pytest.mark.django_db


# --- partners ------------------------------------------------------------------------------

def test_partner_crud(alice, bob, acme, api_as):  # noqa: F811
    api = api_as(bob)
    created = api.post("/api/v1/partners", {"name": "Grace Hopper", "email": "Grace@Navy.MIL",
                                            "kind": "person", "country": "US"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["company_id"] == acme.pk
    assert body["email"] == "Grace@navy.mil"  # normalized by Partner.clean
    assert body["country"] == "US"
    pk = body["id"]

    assert api.get(f"/api/v1/partners/{pk}").json()["name"] == "Grace Hopper"
    changed = api.patch(f"/api/v1/partners/{pk}", {"phone": "+1 555 0100"})
    assert changed.status_code == 200 and changed.json()["phone"] == "+1 555 0100"
    assert Partner.objects.get(pk=pk).phone == "+1 555 0100"

    assert api.delete(f"/api/v1/partners/{pk}").status_code == 403
    admin = api_as(alice)
    assert admin.delete(f"/api/v1/partners/{pk}").status_code == 204
    assert api.get(f"/api/v1/partners/{pk}").status_code == 404
    assert AuditLog.objects.filter(action="contacts.partner.delete", object_id=str(pk)).exists()


def test_partner_list_search_filters_and_pagination(bob, acme, customer, api_as):  # noqa: F811
    org = Partner.objects.create(company=acme, name="Analytical Engines Ltd",
                                 kind="organisation", email="info@engines.test")
    for i in range(5):
        Partner.objects.create(company=acme, name=f"Filler {i}")
    api = api_as(bob)
    assert api.get("/api/v1/partners", {"q": "lovelace"}).json()["items"][0]["id"] == customer.pk
    by_email = api.get("/api/v1/partners", {"q": "engines.test"}).json()
    assert [p["id"] for p in by_email["items"]] == [org.pk]
    orgs = api.get("/api/v1/partners", {"kind": "organisation"}).json()
    assert [p["id"] for p in orgs["items"]] == [org.pk]
    page = api.get("/api/v1/partners", {"limit": 2, "offset": 2}).json()
    assert page["count"] == 7 and len(page["items"]) == 2 and page["offset"] == 2
    everyone = [p["id"] for p in api.get("/api/v1/partners", {"limit": 200}).json()["items"]]
    assert len(everyone) == len(set(everyone)) == 7
    assert api.get("/api/v1/partners", {"limit": 0}).status_code == 422
    assert fields_named(api.get("/api/v1/partners", {"limit": 1000})) == ["limit"]


@pytest.mark.parametrize("payload, field", [
    ({"name": "X", "email": "not an address"}, "email"),
    ({"name": "X", "email": "a@b.test\r\nBcc: evil@x.test"}, "email"),
    ({"name": "Line\r\nBreak"}, "name"),
    ({"name": "Nul\x00byte"}, "name"),
    ({"name": "x" * 201}, "name"),
    ({"name": ""}, "name"),
    ({}, "name"),
    ({"name": None}, "name"),
    ({"name": "X", "kind": "robot"}, "kind"),
    ({"name": "X", "country": "XX"}, "country"),
    ({"name": "X", "surprise": 1}, "surprise"),
    ({"name": "X", "parent_id": 0}, "parent_id"),
    ({"name": "X", "parent_id": 2**70}, "parent_id"),
    ({"name": "X", "parent_id": 987654}, "parent_id"),
    ({"name": "X", "company_id": 987654}, "company_id"),
])
def test_partner_validation_names_the_field(bob, payload, field, api_as):  # noqa: F811
    response = api_as(bob).post("/api/v1/partners", payload)
    assert response.status_code == 422, response.content
    assert field in fields_named(response)
    assert all(item["message"] for item in response.json()["detail"])


def test_partner_parent_must_be_an_organisation(bob, customer, api_as):  # noqa: F811
    response = api_as(bob).post("/api/v1/partners", {"name": "Y", "parent_id": customer.pk})
    assert response.status_code == 422
    assert fields_named(response) == ["parent_id"]


def test_malformed_json_is_400_naming_the_body(bob, api_as):  # noqa: F811
    api = api_as(bob)
    response = api.client.post("/api/v1/partners", data="{not json",
                               content_type="application/json", headers=api.headers)
    assert response.status_code == 400
    assert fields_named(response) == ["body"]
    not_an_object = api.post("/api/v1/partners", ["name"])
    assert not_an_object.status_code == 422


def test_bad_ids_in_the_path(bob, api_as):  # noqa: F811
    api = api_as(bob)
    assert fields_named(api.get("/api/v1/partners/abc")) == ["id"]
    assert api.get(f"/api/v1/partners/{2**63}").status_code == 422
    assert api.get(f"/api/v1/partners/{2**63 - 1}").status_code == 404


def test_unknown_endpoints_answer_json(bob, api_as):  # noqa: F811
    response = api_as(bob).get("/api/v1/no-such-thing/1")
    assert response.status_code == 404
    assert response.json()["detail"][0]["message"] == "No such endpoint."
    assert api_as(bob).client.put("/api/v1/partners", headers=api_as(bob).headers
                                  ).status_code == 405


# --- leads ---------------------------------------------------------------------------------

def test_lead_crud_with_references_and_tracking(alice, bob, acme, customer, api_as):  # noqa: F811
    api = api_as(bob)
    created = api.post("/api/v1/leads", {
        "name": "Engines for the navy", "partner_id": customer.pk, "user_id": bob.pk,
        "expected_revenue": "1200.50", "probability": 40, "priority": "2",
    })
    assert created.status_code == 201, created.content
    lead = created.json()
    assert lead["partner_id"] == customer.pk and lead["user_id"] == bob.pk
    assert Decimal(lead["expected_revenue"]) == Decimal("1200.50")
    assert lead["stage"] == "new"

    moved = api.patch(f"/api/v1/leads/{lead['id']}", {"stage": "qualified", "user_id": None})
    assert moved.status_code == 200, moved.content
    assert moved.json()["stage"] == "qualified" and moved.json()["user_id"] is None
    latest = Message.objects.filter(object_id=lead["id"]).order_by("-id").first()
    assert {t.field for t in latest.tracking.all()} == {"stage", "user"}

    assert api.get("/api/v1/leads", {"stage": "qualified"}).json()["count"] == 1
    assert api.get("/api/v1/leads", {"stage": "won"}).json()["count"] == 0
    assert api.get("/api/v1/leads", {"partner_id": customer.pk}).json()["count"] == 1
    assert api.get("/api/v1/leads", {"q": "NAVY"}).json()["count"] == 1
    assert fields_named(api.get("/api/v1/leads", {"stage": "sold"})) == ["stage"]

    assert api.delete(f"/api/v1/leads/{lead['id']}").status_code == 403
    assert api_as(alice).delete(f"/api/v1/leads/{lead['id']}").status_code == 204
    assert not Lead.objects.filter(pk=lead["id"]).exists()
    assert not Message.objects.filter(object_id=lead["id"],
                                      content_type__model="lead").exists()


@pytest.mark.parametrize("payload, field", [
    ({"probability": 101}, "probability"),
    ({"probability": -1}, "probability"),
    ({"expected_revenue": "-5"}, "expected_revenue"),
    ({"expected_revenue": "1e400"}, "expected_revenue"),
    ({"expected_revenue": "NaN"}, "expected_revenue"),
    ({"expected_revenue": "0.001"}, "expected_revenue"),
    ({"stage": "sold"}, "stage"),
    ({"phone": "1\n2"}, "phone"),
    ({"user_id": "me"}, "user_id"),
    ({"name": None}, "name"),
])
def test_lead_patch_validation(lead, bob, payload, field, api_as):  # noqa: F811
    response = api_as(bob).patch(f"/api/v1/leads/{lead.pk}", payload)
    assert response.status_code == 422, response.content
    assert fields_named(response) == [field]
    lead.refresh_from_db()
    assert lead.name == "Big deal" and lead.stage == "new"


def test_description_keeps_line_breaks(lead, bob, api_as):  # noqa: F811
    response = api_as(bob).patch(f"/api/v1/leads/{lead.pk}", {"description": "a\r\nb"})
    assert response.status_code == 200
    assert response.json()["description"] == "a\r\nb"


def test_user_without_role_cannot_write(acme, api_as):  # noqa: F811
    from tests.conftest import make_user

    nobody = make_user("nobody", [acme], "User")
    nobody.groups.clear()
    api = api_as(nobody)
    assert api.get("/api/v1/leads").status_code == 403
    assert api.post("/api/v1/leads", {"name": "x"}).status_code == 403


def test_dana_creates_in_either_company(dana, acme, globex, api_as):  # noqa: F811
    api = api_as(dana)
    default = api.post("/api/v1/leads", {"name": "A"}).json()
    other = api.post("/api/v1/leads", {"name": "G", "company_id": globex.pk}).json()
    assert default["company_id"] == acme.pk and other["company_id"] == globex.pk
    assert api.get("/api/v1/leads").json()["count"] == 2
    assert api.get("/api/v1/leads", {"company_id": globex.pk}).json()["count"] == 1


# --- every registered type -----------------------------------------------------------------

@pytest.mark.parametrize("key", type_ids())
def test_crud_for_every_type(key, alice, bob, acme, api_as):  # noqa: F811
    s = spec(key)
    api = api_as(bob)
    base = f"/api/v1/{s.slug}"
    record = create_via_api(api, key, acme)
    assert record["company_id"] == acme.pk
    pk = record["id"]

    fetched = api.get(f"{base}/{pk}")
    assert fetched.status_code == 200 and fetched.json()["id"] == pk
    listed = api.get(base, {"limit": 200}).json()
    assert pk in [item["id"] for item in listed["items"]]

    field = text_field(key)
    if field is not None:
        changed = api.patch(f"{base}/{pk}", {field: "Changed through the API"})
        assert changed.status_code == 200, changed.content
        assert changed.json()[field] == "Changed through the API"
        if field in s.search_fields:
            found = api.get(base, {"q": "through the api"}).json()
            assert [item["id"] for item in found["items"]] == [pk]
    assert api.patch(f"{base}/{pk}", {}).status_code == 200

    if s.state_field:
        state = api.get(f"{base}/{pk}").json()[s.state_field]
        assert pk in [i["id"] for i in api.get(base, {s.state_field: state}).json()["items"]]

    chatter = api.get(f"{base}/{pk}/messages")
    assert chatter.status_code == 200 and chatter.json()["count"] >= 1

    assert api.delete(f"{base}/{pk}").status_code == 403
    assert api_as(alice).delete(f"{base}/{pk}").status_code in (204, 409)


@pytest.mark.parametrize("key", type_ids())
def test_validation_names_the_field_for_every_type(key, bob, acme, api_as):  # noqa: F811
    s = spec(key)
    api = api_as(bob)
    base = f"/api/v1/{s.slug}"
    payload = sample_payload(key, acme, bob)
    response = api.post(base, {**payload, "no_such_field": "x"})
    assert response.status_code == 422 and fields_named(response) == ["no_such_field"]
    for field in single_line_fields(key):
        for bad in ("one\r\ntwo", "nul\x00"):
            response = api.post(base, {**payload, field: bad})
            assert response.status_code == 422, (field, response.content)
            assert field in fields_named(response)
        limit = s.write_fields[field].max_length
        response = api.post(base, {**payload, field: "x" * (limit + 1)})
        assert response.status_code == 422 and field in fields_named(response)
    for name in s.fk_fields:
        response = api.post(base, {**payload, name: 10**12})
        assert response.status_code == 422 and fields_named(response) == [name]
    required = [n for n, f in s.write_fields.items() if n in payload
                and not (f.blank or f.null or f.has_default())]
    for name in required:
        response = api.post(base, {k: v for k, v in payload.items() if k != name})
        assert response.status_code == 422 and name in fields_named(response)


def _line(key: str, company, user, **values) -> dict:
    from tests.api.support import make_row, sample_value

    s = spec(key)
    line = {name: sample_value(f, company, user) for name, f in s.lines.write_fields.items()
            if not (f.has_default() or f.blank or f.null)}
    for name, f in s.lines.many_fields.items():
        line[name] = [make_row(f.related_model, company, user).pk]
    line.update(values)
    return line


@pytest.mark.parametrize("key", [k for k in type_ids() if spec(k).lines_writable])
def test_documents_with_lines(key, bob, acme, api_as):  # noqa: F811
    s = spec(key)
    api = api_as(bob)
    base = f"/api/v1/{s.slug}"
    payload = {**sample_payload(key, acme, bob),
               "lines": [_line(key, acme, bob, quantity="2", price_unit="50.00"),
                         _line(key, acme, bob, quantity="1", price_unit="10.00")]}
    created = api.post(base, payload)
    assert created.status_code == 201, created.content
    document = created.json()
    assert len(document["lines"]) == 2
    assert Decimal(document["lines"][0]["quantity"]) == 2
    if "amount_untaxed" in document:
        assert Decimal(document["amount_untaxed"]) == Decimal("110.00")

    first = document["lines"][0]
    kept = api.patch(f"{base}/{document['id']}",
                     {"lines": [{"id": first["id"], "quantity": "3"}]})
    assert kept.status_code == 200, kept.content
    lines = kept.json()["lines"]
    assert [line["id"] for line in lines] == [first["id"]]
    assert Decimal(lines[0]["quantity"]) == 3

    for bad, field in (({"quantity": "-1"}, "lines.0.quantity"), ({"bogus": 1}, "lines.0.bogus"),
                       ({"quantity": "1e99"}, "lines.0.quantity"),
                       ({"id": 10**9}, "lines")):  # not a line of this document
        response = api.patch(f"{base}/{document['id']}",
                             {"lines": [_line(key, acme, bob, **bad)]})
        assert response.status_code == 422, response.content
        assert fields_named(response) == [field]
    assert api.get(f"{base}/{document['id']}").json()["lines"] == lines
