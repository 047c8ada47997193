# ruff: noqa: F811 - the api_as and gina fixtures are imported, then named by tests
"""Routing and inbound mail through the API: alias domains, aliases and allowed senders
(CRUD through the routing services, with audit rows), the inbound log, raw download,
reprocess, and ingesting a raw message the way a provider's webhook would."""

import base64
import json
from email.utils import formatdate

import pytest

from mailroom.business.crm.models import Lead
from mailroom.core.models import AuditLog
from mailroom.incoming.models import InboundMail
from mailroom.routing.models import Alias, AliasDomain, AllowedSender
from tests.api.support import api_as, fields_named, gina  # noqa: F401 - fixtures
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
INBOUND = "/api/v1/inbound"


def raw_message(to="sales@acme.test", subject="Need 40 chairs", body="Hello, a quote please.",
                message_id="<q1@client.example>") -> bytes:
    return "\r\n".join([
        "From: Ada Lovelace <ada@client.example>", f"To: {to}", f"Subject: {subject}",
        f"Date: {formatdate()}", f"Message-ID: {message_id}", "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8", "", body, ""]).encode()


@pytest.fixture(autouse=True)
def _fresh_routing_cache():
    from mailroom.routing.services import clear_cache

    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def domain(acme):
    from mailroom.routing.services import ensure_default_aliases

    domain = AliasDomain.objects.create(company=acme, name="acme.test")
    ensure_default_aliases(domain)
    return domain


@pytest.fixture
def globex_domain(globex):
    return AliasDomain.objects.create(company=globex, name="globex.test")


@pytest.fixture
def gus(globex):
    """A Mail Manager of globex only."""
    return make_user("gus", [globex], "Mail Manager")


def ingest(api, raw: bytes, *, params: str = "", key: str | None = None,
           content_type: str = "message/rfc822"):
    headers = dict(api.headers)
    if key:
        headers["Idempotency-Key"] = key
    return api.client.post(f"{INBOUND}{params}", data=raw, content_type=content_type,
                           headers=headers)


def actions() -> list[str]:
    return list(AuditLog.objects.order_by("id").values_list("action", flat=True))


# --- alias domains -------------------------------------------------------------------------

def test_alias_domain_crud_round_trip_with_audit(mia, acme, api_as):
    api = api_as(mia)
    created = api.post("/api/v1/alias-domains", {"name": "Mail.Acme.Example.",
                                                  "accept_unknown": True})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "mail.acme.example" and body["company_id"] == acme.pk
    assert body["bounce_email"] == "bounce@mail.acme.example"
    assert body["catchall_email"] == "catchall@mail.acme.example"
    url = f"/api/v1/alias-domains/{body['id']}"
    assert api.get(url).json() == body
    changed = api.patch(url, {"catchall_alias": "replies", "sequence": 5})
    assert changed.status_code == 200, changed.content
    assert changed.json()["catchall_email"] == "replies@mail.acme.example"
    listed = api.get("/api/v1/alias-domains").json()
    assert listed["count"] == 1 and listed["items"][0]["sequence"] == 5
    assert api.delete(url).status_code == 204
    assert not AliasDomain.objects.exists()
    assert actions()[-3:] == ["routing.aliasdomain.create", "routing.aliasdomain.change",
                              "routing.aliasdomain.delete"]
    assert AuditLog.objects.filter(action="routing.aliasdomain.change", actor=mia).exists()


def test_alias_domain_validation_messages(mia, globex_domain, api_as):
    api = api_as(mia)
    bad = api.post("/api/v1/alias-domains", {"name": "not a domain", "bounce_alias": "Bad+1"})
    assert bad.status_code == 422
    assert set(fields_named(bad)) == {"name", "bounce_alias"}
    assert "example.com" in json.dumps(bad.json())
    taken = api.post("/api/v1/alias-domains", {"name": "globex.test"})
    assert taken.status_code == 422 and fields_named(taken) == ["name"]
    unknown_field = api.post("/api/v1/alias-domains", {"name": "x.example", "owner": 1})
    assert unknown_field.status_code == 422


def test_domain_with_aliases_cannot_be_deleted(mia, domain, api_as):
    response = api_as(mia).delete(f"/api/v1/alias-domains/{domain.pk}")
    assert response.status_code == 409
    assert "aliases" in response.json()["detail"][0]["message"]


def test_users_read_domains_and_aliases_but_cannot_write(bob, domain, api_as):
    api = api_as(bob)
    assert api.get("/api/v1/alias-domains").json()["count"] == 1
    assert api.get("/api/v1/aliases").json()["count"] == Alias.objects.count() > 0
    refused = api.post("/api/v1/alias-domains", {"name": "bob.example"})
    assert refused.status_code == 403
    alias = Alias.objects.first()
    assert api.patch(f"/api/v1/aliases/{alias.pk}", {"active": False}).status_code == 403
    assert api.delete(f"/api/v1/aliases/{alias.pk}").status_code == 403
    assert api.get("/api/v1/allowed-senders").status_code == 403  # Mail Managers only
    assert Alias.objects.get(pk=alias.pk).active


# --- aliases -------------------------------------------------------------------------------

def test_alias_crud_with_defaults_and_force_thread(mia, acme, domain, lead, api_as):
    api = api_as(mia)
    created = api.post("/api/v1/aliases", {
        "domain_id": domain.pk, "local_part": "VIP", "record_type": "crm.lead",
        "defaults": {"name": "VIP request"}, "contact_policy": "partners",
        "allowlist_only": True, "bounce_message": "Only customers, please.",
        "thread": {"record_type": "crm.lead", "id": lead.pk}})
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["email"] == "vip@acme.test" and body["company_id"] == acme.pk
    assert body["thread"] == {"record_type": "crm.lead", "id": lead.pk}
    assert body["defaults"] == {"name": "VIP request"}
    assert (body["contact_policy"], body["allowlist_only"], body["active"]) == (
        "partners", True, True)
    alias = Alias.objects.get(pk=body["id"])
    assert alias.forces_thread and alias.thread == lead
    url = f"/api/v1/aliases/{alias.pk}"
    changed = api.patch(url, {"thread": None, "active": False})
    assert changed.status_code == 200, changed.content
    assert changed.json()["thread"] is None and changed.json()["active"] is False
    assert api.get(url).json()["email"] == "vip@acme.test"
    assert api.delete(url).status_code == 204
    assert actions()[-3:] == ["routing.alias.create", "routing.alias.change",
                              "routing.alias.delete"]


def test_alias_validation_messages(mia, domain, api_as):
    api = api_as(mia)
    base = {"domain_id": domain.pk, "local_part": "deals", "record_type": "crm.lead"}
    unknown = api.post("/api/v1/aliases", {**base, "record_type": "crm.nothing"})
    assert unknown.status_code == 422 and fields_named(unknown) == ["record_type"]
    bad_default = api.post("/api/v1/aliases", {**base, "defaults": {"colour": "red"}})
    assert bad_default.status_code == 422 and fields_named(bad_default) == ["defaults"]
    assert "no field 'colour'" in bad_default.json()["detail"][0]["message"]
    wrong_type = api.post("/api/v1/aliases", {**base, "defaults": {"partner": "abc"}})
    assert wrong_type.status_code == 422 and fields_named(wrong_type) == ["defaults"]
    nested = api.post("/api/v1/aliases", {**base, "defaults": {"name": {"x": 1}}})
    assert nested.status_code == 422
    taken = api.post("/api/v1/aliases", {**base, "local_part": "sales"})
    assert taken.status_code == 422
    bad_local = api.post("/api/v1/aliases", {**base, "local_part": "a b"})
    assert bad_local.status_code == 422 and fields_named(bad_local) == ["local_part"]
    no_record = api.post("/api/v1/aliases", {**base, "thread": {"record_type": "crm.lead",
                                                                "id": 999999}})
    assert no_record.status_code == 422 and fields_named(no_record) == ["thread.id"]
    assert not Alias.objects.filter(local_part="deals").exists()


def test_alias_isolation(mia, gus, domain, globex_domain, globex_lead, api_as):
    globex_alias = Alias.objects.create(company=globex_domain.company, domain=globex_domain,
                                        local_part="secret", record_type="crm.lead")
    api = api_as(mia)
    assert api.get(f"/api/v1/aliases/{globex_alias.pk}").status_code == 404
    assert api.patch(f"/api/v1/aliases/{globex_alias.pk}", {"active": False}).status_code == 404
    assert api.delete(f"/api/v1/aliases/{globex_alias.pk}").status_code == 404
    assert api.get(f"/api/v1/alias-domains/{globex_domain.pk}").status_code == 404
    emails = {a["email"] for a in api.get("/api/v1/aliases").json()["items"]}
    assert "secret@globex.test" not in emails and "sales@acme.test" in emails
    # no alias on another company's domain, no force-thread onto another company's record
    on_globex = api.post("/api/v1/aliases", {"domain_id": globex_domain.pk, "local_part": "x",
                                             "record_type": "crm.lead"})
    assert on_globex.status_code == 422 and fields_named(on_globex) == ["domain_id"]
    thread = api.post("/api/v1/aliases", {"domain_id": domain.pk, "local_part": "x",
                                          "record_type": "crm.lead",
                                          "thread": {"record_type": "crm.lead",
                                                     "id": globex_lead.pk}})
    assert thread.status_code == 422 and fields_named(thread) == ["thread.id"]
    # and the globex manager sees only globex's
    assert [a["email"] for a in api_as(gus).get("/api/v1/aliases").json()["items"]] == [
        "secret@globex.test"]
    assert Alias.objects.get(pk=globex_alias.pk).active


# --- allowed senders -----------------------------------------------------------------------

def test_allowed_sender_crud_and_isolation(mia, gus, domain, api_as):
    api = api_as(mia)
    alias = Alias.objects.get(local_part="sales")
    created = api.post("/api/v1/allowed-senders", {"pattern": " @Partner.Example ",
                                                   "alias_id": alias.pk, "note": "reseller"})
    assert created.status_code == 201, created.content
    body = created.json()
    assert (body["pattern"], body["is_domain"], body["alias_id"]) == (
        "partner.example", True, alias.pk)
    url = f"/api/v1/allowed-senders/{body['id']}"
    again = api.post("/api/v1/allowed-senders", {"pattern": "partner.example",
                                                 "alias_id": alias.pk})
    assert again.status_code == 422 and fields_named(again) == ["pattern"]
    changed = api.patch(url, {"pattern": "anna@partner.example", "alias_id": None,
                              "alias_domain_id": domain.pk})
    assert changed.status_code == 200, changed.content
    assert changed.json()["is_domain"] is False
    assert changed.json()["alias_domain_id"] == domain.pk
    # globex's manager can neither see nor point at acme's rows
    other = api_as(gus)
    assert other.get(url).status_code == 404
    assert other.delete(url).status_code == 404
    foreign = other.post("/api/v1/allowed-senders", {"pattern": "x.example",
                                                     "alias_id": alias.pk})
    assert foreign.status_code == 422 and fields_named(foreign) == ["alias_id"]
    assert api.delete(url).status_code == 204
    assert not AllowedSender.objects.exists()
    assert "routing.allowedsender.delete" in actions()


# --- ingest --------------------------------------------------------------------------------

def test_ingest_stores_then_the_router_makes_a_lead(mia, acme, domain, api_as):
    from mailroom.incoming.router import route_pending

    response = ingest(api_as(mia), raw_message(), params="?recipient=sales@acme.test")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["state"] == "received" and body["url"] == f"{INBOUND}/{body['id']}"
    mail = InboundMail.objects.get(pk=body["id"])
    assert (mail.company, mail.source, mail.envelope_to) == (acme, "api", ["sales@acme.test"])
    assert route_pending() == 1
    lead = Lead.objects.get()
    assert lead.name == "Need 40 chairs"
    detail = api_as(mia).get(body["url"]).json()
    assert (detail["state"], detail["decision"]) == ("done", "created")
    assert detail["record"] == {"type": "crm.lead", "id": lead.pk}
    assert [step["rule"] for step in detail["trace"]][-1] == "post"
    assert detail["reason"]


def test_ingest_without_recipients_reads_to_and_cc(mia, domain, api_as):
    raw = raw_message(to="Someone <someone@elsewhere.example>, Sales <sales@acme.test>")
    response = ingest(api_as(mia), raw)
    assert response.status_code == 202, response.content
    assert InboundMail.objects.get().envelope_to == []
    nobody = ingest(api_as(mia), raw_message(to="someone@elsewhere.example",
                                             message_id="<q2@x>"))
    assert nobody.status_code == 422 and fields_named(nobody) == ["recipient"]


def test_ingest_as_json(mia, domain, api_as):
    api = api_as(mia)
    payload = {"raw_base64": base64.b64encode(raw_message()).decode(),
               "recipients": ["support@acme.test"]}
    response = api.post(INBOUND, payload)
    assert response.status_code == 202, response.content
    assert InboundMail.objects.get().envelope_to == ["support@acme.test"]
    bad = api.post(INBOUND, {"raw_base64": "***", "recipients": ["sales@acme.test"]})
    assert bad.status_code == 422 and fields_named(bad) == ["raw_base64"]
    extra = api.post(INBOUND, {"raw_base64": "", "colour": 1})
    assert extra.status_code == 422


def test_idempotency_key_stores_a_retried_webhook_once(mia, domain, api_as):
    api = api_as(mia)
    first = ingest(api, raw_message(), params="?recipient=sales@acme.test", key="evt-1")
    again = ingest(api, raw_message(), params="?recipient=sales@acme.test", key="evt-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert first.json()["id"] == again.json()["id"]
    mail = InboundMail.objects.get()
    assert mail.source_key == f"api:{mail.company_id}:evt-1"
    other = ingest(api, raw_message(), params="?recipient=sales@acme.test", key="evt-2")
    assert other.status_code == 202 and InboundMail.objects.count() == 2


def test_unknown_or_foreign_recipient_is_named(mia, domain, globex_domain, api_as):
    api = api_as(mia)
    response = ingest(api, raw_message(),
                      params="?recipient=sales@acme.test&recipient=nobody@nowhere.example")
    assert response.status_code == 422
    assert fields_named(response) == ["recipient.1"]
    assert "nobody@nowhere.example" in response.json()["detail"][0]["message"]
    foreign = ingest(api, raw_message(), params="?recipient=catchall@globex.test")
    assert foreign.status_code == 422
    assert "catchall@globex.test" in foreign.json()["detail"][0]["message"]
    assert not InboundMail.objects.exists()


def test_too_large_is_a_json_413(mia, domain, api_as, settings):
    settings.MAILROOM_INBOUND_MAX_BYTES = 2_000
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    api = api_as(mia)
    # over Django's upload limit but within ours: still accepted, read from the stream
    fits = raw_message(body="x" * 1_500)
    assert 1_000 < len(fits) < 2_000
    assert ingest(api, fits, params="?recipient=sales@acme.test").status_code == 202
    huge = ingest(api, raw_message(body="x" * 5_000), params="?recipient=sales@acme.test")
    assert huge.status_code == 413
    assert huge["Content-Type"].startswith("application/json")
    assert "limit is 2,000 bytes" in huge.json()["detail"][0]["message"]
    as_json = api.post(INBOUND, {"raw_base64": base64.b64encode(b"x" * 3_000).decode(),
                                 "recipients": ["sales@acme.test"]})
    assert as_json.status_code == 413
    assert InboundMail.objects.count() == 1


def test_empty_body_and_wrong_type(mia, domain, api_as):
    api = api_as(mia)
    empty = ingest(api, b"", params="?recipient=sales@acme.test")
    assert empty.status_code == 400 and "empty" in empty.json()["detail"][0]["message"]
    form = ingest(api, b"a=b", params="?recipient=sales@acme.test",
                  content_type="application/x-www-form-urlencoded")
    assert form.status_code == 415


def test_ingest_needs_a_mail_manager(bob, domain, api_as):
    response = ingest(api_as(bob), raw_message(), params="?recipient=sales@acme.test")
    assert response.status_code == 403
    assert not InboundMail.objects.exists()


# --- the log, raw bytes, reprocess ---------------------------------------------------------

def test_log_filters_raw_bytes_and_reprocess(mia, bob, gus, domain, api_as):
    from mailroom.incoming.router import route_pending

    api = api_as(mia)
    raw = raw_message()
    mail_id = ingest(api, raw, params="?recipient=sales@acme.test").json()["id"]
    assert api.get(INBOUND, {"state": "received"}).json()["count"] == 1
    route_pending()
    assert api.get(INBOUND, {"state": "received"}).json()["count"] == 0
    done = api.get(INBOUND, {"decision": "created", "since": "2000-01-01T00:00:00Z"}).json()
    assert [m["id"] for m in done["items"]] == [mail_id] and done["limit"] == 50
    assert api.get(INBOUND, {"since": "2999-01-01T00:00:00Z"}).json()["count"] == 0
    assert api.get(INBOUND, {"state": "nope"}).status_code == 422

    downloaded = api.get(f"{INBOUND}/{mail_id}/raw")
    assert downloaded.status_code == 200
    assert downloaded["Content-Type"] == "message/rfc822"
    assert b"".join(downloaded.streaming_content if downloaded.streaming
                    else [downloaded.content]) == raw
    from mailroom.core.blobs import BlobUnreachable
    from mailroom.incoming import services

    def down(sha256):
        raise BlobUnreachable("The bucket did not answer.")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(services, "read_blob", down)
        busy = api.get(f"{INBOUND}/{mail_id}/raw")
    assert busy.status_code == 503 and "try again" in busy.json()["detail"][0]["message"]

    assert api_as(bob).post(f"{INBOUND}/{mail_id}/reprocess", {}).status_code == 403
    again = api.post(f"{INBOUND}/{mail_id}/reprocess", {})
    assert again.status_code == 200 and again.json()["state"] == "received"
    assert api.post(f"{INBOUND}/{mail_id}/reprocess", {}).status_code == 409
    assert AuditLog.objects.filter(action="incoming.inboundmail.reprocess", actor=mia).exists()
    route_pending()
    assert InboundMail.objects.get(pk=mail_id).state == "done"

    # another company's manager: nothing to see
    other = api_as(gus)
    assert other.get(f"{INBOUND}/{mail_id}").status_code == 404
    assert other.get(f"{INBOUND}/{mail_id}/raw").status_code == 404
    assert other.post(f"{INBOUND}/{mail_id}/reprocess", {}).status_code == 404
    assert other.get(INBOUND).json()["count"] == 0
