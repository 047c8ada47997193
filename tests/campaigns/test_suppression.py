"""The suppression list: idempotent suppress, audited unsuppress for Mail Managers only, CSV
import with every refused row reported, CSV export, and the admin page Email › Suppression
list (company-scoped, read-only rows, add/remove through the services)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from mailroom.campaigns import suppression
from mailroom.campaigns.models import Suppression
from mailroom.core.models import AuditLog
from tests.campaigns.conftest import csv_bytes

Reason = Suppression.Reason


def test_suppress_is_idempotent_and_keeps_the_first_reason(acme, mia):
    row, created = suppression.suppress(acme, "Ada@Client.example", Reason.BOUNCED, actor=None,
                                        note="550 5.1.1")
    assert created and row.email == "ada@client.example" and row.reason == Reason.BOUNCED
    again, created = suppression.suppress(acme, "ada@client.example", Reason.MANUAL, actor=mia)
    assert not created and again.pk == row.pk and again.reason == Reason.BOUNCED
    assert Suppression.objects.count() == 1
    assert suppression.is_suppressed(acme, "ADA@client.example")
    assert suppression.suppressed_among(acme.pk, ["ada@client.example", "x@y.example"]) == {
        "ada@client.example"}


def test_suppression_is_company_scoped(acme, globex):
    suppression.suppress(acme, "ada@client.example", Reason.MANUAL, actor=None)
    assert not suppression.is_suppressed(globex, "ada@client.example")


def test_an_invalid_address_is_refused_with_a_message(acme, mia):
    with pytest.raises(ValidationError, match="Not an email address"):
        suppression.suppress(acme, "not an address", Reason.MANUAL, actor=mia)


def test_unsuppress_is_for_mail_managers_and_audited(acme, mia, bob):
    suppression.suppress(acme, "ada@client.example", Reason.UNSUBSCRIBED, actor=None)
    with pytest.raises(PermissionDenied):
        suppression.unsuppress(acme, "ada@client.example", actor=bob)
    with pytest.raises(PermissionDenied):
        suppression.suppress(acme, "bob@client.example", Reason.MANUAL, actor=bob)
    assert suppression.unsuppress(acme, "ADA@client.example", actor=mia, note="asked by phone")
    assert not suppression.is_suppressed(acme, "ada@client.example")
    log = AuditLog.objects.get(action="campaigns.suppression.remove")
    assert log.actor == mia and log.before["reason"] == "unsubscribed"
    assert log.after == {"note": "asked by phone"}
    assert not suppression.unsuppress(acme, "ada@client.example", actor=mia)  # already off


def test_import_one_address_per_row_reports_bad_rows(acme, mia):
    suppression.suppress(acme, "old@client.example", Reason.BOUNCED, actor=None)
    content = csv_bytes([["ada@client.example"], ["not-an-address"], [""],
                         ["OLD@client.example"], ["Ada@Client.example"], ["bob@client.example"]])
    result = suppression.import_csv(acme, content, actor=mia, note="old tool")
    assert (result.added, result.already, result.bad_count) == (2, 1, 2)
    assert [(line, why.split(":")[0]) for line, _, why in result.bad] == [
        (2, "Not an email address"), (5, "Listed twice in the file.")]
    rows = dict(Suppression.objects.values_list("email", "reason"))
    assert rows == {"ada@client.example": "import", "bob@client.example": "import",
                    "old@client.example": "bounced"}
    assert Suppression.objects.get(email="bob@client.example").note == "old tool"
    assert AuditLog.objects.get(action="campaigns.suppression.import").after["added"] == 2


def test_import_takes_the_email_column_of_a_file_with_a_header(acme, mia):
    content = csv_bytes([["Name", "E-mail", "City"], ["Ada", "ada@client.example", "Lyon"],
                         ["Bob", "", "Paris"]], delimiter=";")
    result = suppression.import_csv(acme, content, actor=mia)
    assert result.added == 1 and result.bad == [(3, "", "No address in this row.")]


def test_export_lists_every_row(acme, mia, globex):
    suppression.suppress(acme, "b@client.example", Reason.COMPLAINED, actor=None)
    suppression.suppress(acme, "a@client.example", Reason.MANUAL, actor=mia, note="=cmd")
    suppression.suppress(globex, "z@client.example", Reason.MANUAL, actor=None)
    rows = list(suppression.export_rows(acme, actor=mia))
    assert [r[:3] for r in rows] == [["a@client.example", "manual", "=cmd"],
                                     ["b@client.example", "complained", ""]]


# --- the admin page ---------------------------------------------------------------------------

def test_admin_list_add_remove_import_export(client_for, acme, mia, globex):
    suppression.suppress(globex, "globex-only@client.example", Reason.MANUAL, actor=None)
    suppression.suppress(acme, "ada@client.example", Reason.UNSUBSCRIBED, actor=None)
    client = client_for(mia)
    changelist = reverse("admin:campaigns_suppression_changelist")
    html = client.get(changelist).content.decode()
    assert "ada@client.example" in html and "Unsubscribed from all" in html
    assert "globex-only" not in html

    response = client.post(reverse("admin:campaigns_suppression_add"), {
        "company": acme.pk, "email": "Bob@Client.example", "reason": "manual",
        "note": "asked us"})
    assert response.status_code == 302, response.content.decode()[:2000]
    row = Suppression.objects.get(email="bob@client.example")
    assert row.created_by == mia and AuditLog.objects.filter(
        action="campaigns.suppression.add", actor=mia).exists()
    # a row is read-only: its page shows it, no form to change it
    page = client.get(reverse("admin:campaigns_suppression_change", args=[row.pk]))
    assert page.status_code == 200 and b'name="email"' not in page.content

    response = client.post(reverse("admin:campaigns_suppression_delete", args=[row.pk]),
                           {"post": "yes"})
    assert response.status_code == 302
    assert not suppression.is_suppressed(acme, "bob@client.example")
    assert AuditLog.objects.filter(action="campaigns.suppression.remove", actor=mia).exists()

    import_url = reverse("admin:campaigns_suppression_import_suppressions")
    assert client.get(import_url).status_code == 200
    upload = SimpleUploadedFile("list.csv", csv_bytes([["email"], ["c@client.example"],
                                                       ["nope"]]), "text/csv")
    html = client.post(import_url, {"file": upload, "note": "migrated"}).content.decode()
    assert "1 added" in html and "1 refused" in html and "Not an email address" in html

    response = client.get(reverse("admin:campaigns_suppression_export_suppressions"))
    body = b"".join(response.streaming_content).decode()
    assert response["Content-Type"].startswith("text/csv")
    assert body.splitlines()[0].lstrip("\ufeff") == "email,reason,note,created_at"
    assert "ada@client.example,unsubscribed" in body and "globex-only" not in body


def test_a_user_sees_the_list_but_cannot_change_it(client_for, acme, bob):
    suppression.suppress(acme, "ada@client.example", Reason.MANUAL, actor=None)
    client = client_for(bob)
    assert b"ada@client.example" in client.get(
        reverse("admin:campaigns_suppression_changelist")).content
    assert client.get(reverse("admin:campaigns_suppression_add")).status_code == 403
    assert client.get(reverse("admin:campaigns_suppression_import_suppressions")
                      ).status_code == 403
