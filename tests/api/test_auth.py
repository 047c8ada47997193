"""API authentication: keys (Bearer and X-API-Key), the session, 401s, and `mailroom apikey`."""

import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from mailroom.core.models import ApiKey, AuditLog
from mailroom.core.services import create_api_key, revoke_api_key
from tests.api.support import Api, api_as  # noqa: F401 - fixture
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def assert_401(response):
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["detail"][0]["field"] is None
    assert "Bearer" in body["detail"][0]["message"]
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer garbage"},
    {"Authorization": "Basic Ym9iOnBhc3M="},
    {"Authorization": "Bearer mr_deadbeef_not-a-real-secret"},
    {"X-API-Key": "mr_deadbeef_not-a-real-secret"},
    {"X-API-Key": "mr_" + "f" * 5000},
    {"X-API-Key": "mr_zz%00_x"},
])
def test_missing_or_bad_key_is_401(bob, headers):
    assert_401(Client().get("/api/v1/me", headers=headers))
    assert_401(Client().post("/api/v1/leads", data="{}", content_type="application/json",
                             headers=headers))


def test_bearer_and_header_keys_work(bob):
    _key, secret = create_api_key(bob, actor=bob)
    for headers in ({"Authorization": f"Bearer {secret}"}, {"X-API-Key": secret}):
        response = Client().get("/api/v1/me", headers=headers)
        assert response.status_code == 200
        assert response.json()["username"] == "bob"


def test_key_of_another_user_acts_as_that_user(bob, alice):
    _key, secret = create_api_key(bob, actor=alice)
    assert Client().get("/api/v1/me", headers={"X-API-Key": secret}).json()["username"] == "bob"


def test_revoked_key_is_401(bob):
    key, secret = create_api_key(bob, actor=bob)
    headers = {"Authorization": f"Bearer {secret}"}
    assert Client().get("/api/v1/me", headers=headers).status_code == 200
    revoke_api_key(key, actor=bob)
    assert_401(Client().get("/api/v1/me", headers=headers))


def test_tampered_secret_is_401(bob):
    _key, secret = create_api_key(bob, actor=bob)
    assert_401(Client().get("/api/v1/me", headers={"X-API-Key": secret[:-1] + "x"}))


def test_inactive_user_key_is_401(bob):
    _key, secret = create_api_key(bob, actor=bob)
    bob.is_active = False
    bob.save()
    assert_401(Client().get("/api/v1/me", headers={"X-API-Key": secret}))


def test_key_is_stored_hashed(bob):
    key, secret = create_api_key(bob, actor=bob)
    row = ApiKey.objects.filter(pk=key.pk).values().get()
    the_secret_part = secret.rsplit("_", 1)[-1]
    for value in row.values():
        assert the_secret_part not in str(value)
    assert row["key_hash"] == hashlib.sha256(secret.encode()).hexdigest()


def test_use_is_recorded(bob):
    key, secret = create_api_key(bob, actor=bob)
    Client().get("/api/v1/me", headers={"X-API-Key": secret})
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_session_works_and_unsafe_methods_need_csrf(bob):
    client = Client(enforce_csrf_checks=True)
    assert client.login(username="bob", password=PASSWORD)
    assert client.get("/api/v1/me").json()["username"] == "bob"
    refused = client.post("/api/v1/partners", data='{"name": "X"}',
                          content_type="application/json")
    assert refused.status_code == 403
    client.get("/api/docs")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/v1/partners", data='{"name": "X"}',
                           content_type="application/json", headers={"X-CSRFToken": token})
    assert accepted.status_code == 201, accepted.content


def test_me_lists_companies_and_roles(dana, api_as):  # noqa: F811
    body = api_as(dana).get("/api/v1/me").json()
    assert {c["name"] for c in body["companies"]} == {"Acme Corp", "Globex"}
    assert body["roles"] == ["User"]
    assert body["current_company_id"] == dana.current_company_id


def test_record_types_lists_the_registry(bob, api_as):  # noqa: F811
    from mailroom.core import record_types

    body = api_as(bob).get("/api/v1/record-types").json()
    keys = {item["key"] for item in body}
    assert {"contacts.partner", "crm.lead"} <= keys
    assert keys <= {rt.key for rt in record_types.all_types()}
    lead = next(item for item in body if item["key"] == "crm.lead")
    assert lead["slug"] == "leads" and lead["default_alias"] == "sales"
    assert "partner.name" in lead["template_fields"]


def test_docs_and_schema_are_served_locally():
    client = Client()
    schema = client.get("/api/openapi.json")
    assert schema.status_code == 200
    body = schema.json()
    assert body["info"]["title"] == "Mailroom API"
    assert "/api/v1/partners" in body["paths"] and "/api/v1/leads/{id}" in body["paths"]
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "/api/openapi.json" in html and "cdn" not in html.lower()
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/api/docs/assets/swagger.html").status_code == 404


# --- mailroom apikey -----------------------------------------------------------------------

def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("apikey", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_apikey_create_prints_a_working_key_once(bob):
    out, err = run("create", "--user", "bob", "--name", "crm sync")
    secret = out.strip()
    assert secret.startswith("mr_") and "\n" not in secret
    assert "cannot be shown again" in err
    key = ApiKey.objects.get(user=bob)
    assert key.name == "crm sync"
    assert Client().get("/api/v1/me", headers={"X-API-Key": secret}).status_code == 200
    assert AuditLog.objects.filter(action="apikey.create", object_id=str(key.pk)).exists()
    listing, _ = run("list", "--user", "bob")
    assert key.prefix in listing and "crm sync" in listing and "active" in listing
    assert secret.split("_", 2)[2] not in listing  # the part after the prefix (it may hold
    # underscores itself: its last piece alone can be one letter found anywhere)


def test_apikey_revoke(bob):
    out, _ = run("create", "--user", "bob")
    secret = out.strip()
    key = ApiKey.objects.get(user=bob)
    out, _ = run("revoke", key.prefix)
    assert "Revoked" in out
    assert_401(Client().get("/api/v1/me", headers={"X-API-Key": secret}))
    assert AuditLog.objects.filter(action="apikey.revoke", object_id=str(key.pk)).exists()
    assert "revoked" in run("list")[0]
    assert "already" in run("revoke", f"mr_{key.prefix}")[0]


def test_apikey_errors(bob):
    with pytest.raises(CommandError):
        run("create", "--user", "nobody")
    with pytest.raises(CommandError):
        run("revoke", "ffffffff")
