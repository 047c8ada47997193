"""Activities through the API: list (mine and planned by default), create on a record,
complete, approve; company scoped (other companies' rows are 404) and permission checked."""

from __future__ import annotations

import datetime

import pytest
from django.utils import timezone

from mailroom.activities.models import Activity
from mailroom.chatter.models import Message
from mailroom.chatter.services import thread_queryset
from tests.activities.conftest import mails_to
from tests.api.support import api_as  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def day(offset: int = 0) -> str:
    return (timezone.localdate() + datetime.timedelta(days=offset)).isoformat()


def create(api, record, **fields):
    payload = {"record_type": "crm.lead", "record_id": record.pk, "type": "call",
               "summary": "Call Ada", "due_date": day(), **fields}
    return api.post("/api/v1/activities", payload)


def test_create_list_and_complete(lead, bob, alice, api_as, domain):  # noqa: F811
    api = api_as(alice)
    created = create(api, lead, assignee_id=bob.pk, due_date=day(-1), note="About the quote")
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["assignee_id"] == bob.pk and body["requested_by_id"] == alice.pk
    assert body["record_type"] == "crm.lead" and body["record_name"] == "Big deal"
    assert body["urgency"] == "overdue" and body["state"] == "planned"
    assert len(mails_to("bob@acme.example")) == 1  # bob is told
    mine = create(api, lead, summary="Alice's own").json()
    assert mine["assignee_id"] == alice.pk  # default: the caller

    bobs = api_as(bob)
    listed = bobs.get("/api/v1/activities").json()
    assert [a["summary"] for a in listed["items"]] == ["Call Ada"] and listed["count"] == 1
    everyone = bobs.get("/api/v1/activities", {"mine": "false"}).json()
    assert everyone["count"] == 2
    assert bobs.get("/api/v1/activities", {"due": "today"}).json()["count"] == 0

    done = bobs.post(f"/api/v1/activities/{body['id']}/done", {"feedback": "Ada agreed"})
    assert done.status_code == 200, done.content
    assert done.json()["state"] == "done" and done.json()["urgency"] == "closed"
    note = thread_queryset(Message, lead).filter(message_type="note").first()
    assert "Ada agreed" in note.body_html and "Call done" in note.body_html
    again = bobs.post(f"/api/v1/activities/{body['id']}/done", {})
    assert again.status_code == 422 and "already done" in again.json()["detail"][0]["message"]
    assert bobs.get("/api/v1/activities").json()["count"] == 0
    closed = bobs.get("/api/v1/activities", {"state": "done"}).json()
    assert [a["feedback"] for a in closed["items"]] == ["Ada agreed"]


def test_approve_through_the_api_only_as_the_assignee(lead, bob, dana, api_as):  # noqa: F811
    approval = create(api_as(bob), lead, type="approval", assignee_id=dana.pk).json()
    refused = api_as(bob).post(f"/api/v1/activities/{approval['id']}/approve", {})
    assert refused.status_code == 403
    assert api_as(bob).post(f"/api/v1/activities/{approval['id']}/done", {}).status_code == 422
    approved = api_as(dana).post(f"/api/v1/activities/{approval['id']}/approve",
                                 {"feedback": "Yes"})
    assert approved.status_code == 200 and approved.json()["state"] == "approved"


def test_bad_input_names_the_field(lead, bob, charlie, api_as):  # noqa: F811
    api = api_as(bob)
    cases = [
        ({"assignee_id": charlie.pk}, "assignee_id"),
        ({"type": "nap"}, "type"),
        ({"due_date": "soon"}, "due_date"),
        ({"record_type": "crm.nothing"}, "record_type"),
        ({"summary": "x" * 201}, "summary"),
        ({"colour": "red"}, "colour"),
    ]
    for fields, field in cases:
        response = create(api, lead, **fields)
        assert response.status_code == 422, (fields, response.content)
        assert field in [d["field"] for d in response.json()["detail"]], response.json()
    assert Activity.objects.count() == 0


def test_other_companies_are_invisible(lead, bob, charlie, globex_lead, api_as):  # noqa: F811
    mine = create(api_as(bob), lead).json()
    api = api_as(charlie)
    assert api.get(f"/api/v1/activities/{mine['id']}").status_code == 404
    assert api.post(f"/api/v1/activities/{mine['id']}/done", {}).status_code == 404
    assert create(api, lead).status_code == 404  # bob's company's lead
    assert api.get("/api/v1/activities", {"mine": "false"}).json()["count"] == 0
    assert Activity.objects.get(pk=mine["id"]).is_planned


def test_without_a_key_nothing_is_listed(client, lead, bob):
    assert client.get("/api/v1/activities").status_code == 401
