"""Company isolation on every endpoint of every registered type: globex users get 404 for
acme's rows (never 403, so nothing leaks), never list them, cannot create in acme, and
cannot point a globex record at an acme row."""

import pytest

from tests.api.support import (  # noqa: F401 - fixtures
    api_as,
    company_fks,
    create_via_api,
    fields_named,
    gina,
    make_row,
    sample_payload,
    spec,
    type_ids,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme_rows(alice, acme, api_as):  # noqa: F811
    """One row of every type in acme, created through the API by acme's administrator."""
    return {key: create_via_api(api_as(alice), key, acme) for key in type_ids()}


def assert_404(response):
    assert response.status_code == 404, response.content
    assert response.json() == {"detail": [{"field": None, "message": "Not found."}]}


@pytest.mark.parametrize("key", type_ids())
def test_other_company_gets_404_everywhere(
    key, acme_rows, alice, charlie, gina, api_as,  # noqa: F811
):
    s = spec(key)
    row = acme_rows[key]
    url = f"/api/v1/{s.slug}/{row['id']}"
    for user in (charlie, gina):  # a globex user and a globex administrator
        api = api_as(user)
        assert_404(api.get(url))
        assert_404(api.patch(url, {}))
        assert_404(api.delete(url))
        assert_404(api.get(f"{url}/messages"))
        assert_404(api.post(f"{url}/messages", {"body": "hello", "message_type": "note"}))
    assert api_as(alice).get(url).json() == row  # nothing changed, nothing deleted
    assert api_as(alice).get(f"{url}/messages").json()["count"] == 1


@pytest.mark.parametrize("key", type_ids())
def test_lists_never_contain_other_companies_rows(key, acme, acme_rows, charlie, dana,
                                                  api_as):  # noqa: F811
    s = spec(key)
    base = f"/api/v1/{s.slug}"
    api = api_as(charlie)
    mine = create_via_api(api, key, charlie.current_company)
    for params in ({}, {"company_id": acme.pk}, {"q": "Probe"}, {"limit": 200}):
        ids = [item["id"] for item in api.get(base, params).json()["items"]]
        assert acme_rows[key]["id"] not in ids
    listed = api.get(base, {"limit": 200}).json()
    assert {item["company_id"] for item in listed["items"]} == {charlie.current_company_id}
    assert mine["id"] in [item["id"] for item in listed["items"]]
    # dana belongs to both and sees both
    both = [item["id"] for item in api_as(dana).get(base, {"limit": 200}).json()["items"]]
    assert {acme_rows[key]["id"], mine["id"]} <= set(both)


@pytest.mark.parametrize("key", type_ids())
def test_cannot_create_in_another_company(key, acme, charlie, api_as):  # noqa: F811
    s = spec(key)
    payload = sample_payload(key, charlie.current_company, charlie)
    before = s.model.objects.filter(company=acme).count()
    response = api_as(charlie).post(f"/api/v1/{s.slug}", {**payload, "company_id": acme.pk})
    assert response.status_code == 422
    assert fields_named(response) == ["company_id"]
    nowhere = api_as(charlie).post(f"/api/v1/{s.slug}", {**payload, "company_id": 10**9})
    assert nowhere.json() == response.json()  # same answer: acme's existence does not leak
    assert s.model.objects.filter(company=acme).count() == before


@pytest.mark.parametrize("key", [k for k in type_ids() if company_fks(k)])
def test_cannot_reference_other_companies_rows(key, acme, alice, charlie, api_as):  # noqa: F811
    s = spec(key)
    fks = company_fks(key)
    api = api_as(charlie)
    globex = charlie.current_company
    own = create_via_api(api, key, globex)
    for name, f in fks.items():
        foreign = make_row(f.related_model, acme, alice)
        payload = {**sample_payload(key, globex, charlie), name: foreign.pk}
        created = api.post(f"/api/v1/{s.slug}", payload)
        assert created.status_code == 422, (name, created.content)
        assert fields_named(created) == [name]
        patched = api.patch(f"/api/v1/{s.slug}/{own['id']}", {name: foreign.pk})
        assert patched.status_code == 422 and fields_named(patched) == [name]
    assert api.get(f"/api/v1/{s.slug}/{own['id']}").json() == own


@pytest.mark.parametrize("key", [k for k in type_ids()
                                 if spec(k).lines_writable and spec(k).lines.many_fields])
def test_lines_cannot_reference_other_companies_rows(key, acme, alice, charlie,
                                                     api_as):  # noqa: F811
    s = spec(key)
    api = api_as(charlie)
    for name, f in s.lines.many_fields.items():
        foreign = make_row(f.related_model, acme, alice)
        payload = {**sample_payload(key, charlie.current_company, charlie),
                   "lines": [{"description": "x", name: [foreign.pk]}]}
        response = api.post(f"/api/v1/{s.slug}", payload)
        assert response.status_code == 422
        assert fields_named(response) == [f"lines.0.{name}"]


def test_partners_of_another_company_are_invisible(customer, charlie, api_as):  # noqa: F811
    api = api_as(charlie)
    assert_404(api.get(f"/api/v1/partners/{customer.pk}"))
    assert api.get("/api/v1/partners", {"q": "Ada"}).json()["count"] == 0
    child = api.post("/api/v1/partners", {"name": "Spy", "parent_id": customer.pk})
    assert fields_named(child) == ["parent_id"]


def test_me_shows_only_own_companies(charlie, api_as):  # noqa: F811
    body = api_as(charlie).get("/api/v1/me").json()
    assert [c["name"] for c in body["companies"]] == ["Globex"]


def test_assigning_a_user_of_another_company_is_refused(charlie, bob, api_as):  # noqa: F811
    response = api_as(charlie).post("/api/v1/leads", {"name": "x", "user_id": bob.pk})
    assert response.status_code == 422 and fields_named(response) == ["user_id"]
