"""The import wizard, its progress page, the bad-rows download and the export, as people
use them: steps answer 200 or redirect, problems are red lines, never a 500; other
companies' lists are 404; office users may look but not import or export."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mailroom.campaigns import services, tasks
from mailroom.campaigns.models import ImportJob, MailingList, Subscription
from mailroom.contacts.models import Partner
from tests.campaigns.conftest import csv_bytes

pytestmark = pytest.mark.django_db


def upload(client, mailing_list, content: bytes, name: str = "people.csv",
           consent: str = "Trade fair"):
    return client.post(f"/campaigns/lists/{mailing_list.pk}/import/", {
        "file": SimpleUploadedFile(name, content), "consent_how": consent})


def body(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode("utf-8-sig")
    return response.content.decode()


def test_the_wizard_from_upload_to_results(client_for, mia, newsletter):
    client = client_for(mia)
    page = client.get(f"/campaigns/lists/{newsletter.pk}/import/")
    assert page.status_code == 200 and "Step 1 of 3" in body(page)
    content = csv_bytes([["Mail", "Nom", "Tags"], ["ada@client.example", "Ada", "vip"],
                         ["nobody", "Broken", ""]])
    response = upload(client, newsletter, content)
    job = ImportJob.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/imports/{job.pk}/map/"
    assert job.mapping == {"email": 0, "name": 1, "tags": 2} and job.has_header
    page = client.get(response["Location"])
    text = body(page)
    assert page.status_code == 200
    assert "<strong>1</strong> row to import, <strong>1</strong> with a problem" in text
    assert "Invalid address" in text
    # the person moves the name column elsewhere and asks for a new preview: nothing written
    response = client.post(f"/campaigns/imports/{job.pk}/map/", {
        "map_email": "0", "map_name": "", "map_tags": "2", "has_header": "on",
        "action": "preview"})
    assert response.status_code == 200
    job.refresh_from_db()
    assert job.state == ImportJob.State.DRAFT
    response = client.post(f"/campaigns/imports/{job.pk}/map/", {
        "map_email": "0", "map_name": "1", "map_tags": "2", "has_header": "on",
        "action": "import"})
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/imports/{job.pk}/"
    job.refresh_from_db()
    assert job.state == ImportJob.State.QUEUED
    page = client.get(f"/campaigns/imports/{job.pk}/")
    assert "Waiting for the worker" in body(page)
    assert 'hx-trigger="every 2s"' in body(page)  # the bar polls until done
    assert tasks.contact_imports_step("w1")
    progress = client.get(f"/campaigns/imports/{job.pk}/progress/")
    text = body(progress)
    assert "Done: 2 rows read." in text and "hx-trigger" not in text
    assert "1 new subscription" in text and "1 row left out" in text
    assert "bad-rows.csv" in text
    rows = list(csv.reader(io.StringIO(body(client.get(
        f"/campaigns/imports/{job.pk}/bad-rows.csv")))))
    assert rows[0][:4] == ["line", "email", "reason", "details"]
    assert rows[1][:3] == ["3", "nobody", "Invalid address"]
    assert rows[1][4:] == ["nobody", "Broken", ""]  # the original cells, to fix and re-import


@pytest.mark.parametrize(("name", "content", "consent", "red_line"), [
    ("people.pdf", b"%PDF", "Fair", "Upload a .csv or .xlsx file."),
    ("people.csv", b"   ", "Fair", "The file is empty."),
    ("people.xlsx", b"PK\x03\x04broken", "Fair", "not an Excel .xlsx file"),
    ("people.csv", b"email\nada@client.example\n", "", "Say how these people agreed"),
])
def test_upload_problems_are_red_lines(client_for, mia, newsletter, name, content, consent,
                                       red_line):
    response = upload(client_for(mia), newsletter, content, name, consent)
    assert response.status_code == 200
    assert red_line in body(response)
    assert 'class="mr-red-line"' in body(response)
    assert not ImportJob.objects.exists()


def test_no_file_is_a_red_line(client_for, mia, newsletter):
    response = client_for(mia).post(f"/campaigns/lists/{newsletter.pk}/import/",
                                    {"consent_how": "Fair"})
    assert response.status_code == 200 and "Choose a CSV or Excel" in body(response)


def test_a_mapping_without_email_or_good_rows_does_not_start(client_for, mia, newsletter):
    client = client_for(mia)
    upload(client, newsletter, csv_bytes([["who", "where"], ["Ada", "Lyon"]]))
    job = ImportJob.objects.get()
    page = client.get(f"/campaigns/imports/{job.pk}/map/")
    assert "Choose the column that holds the email address." in body(page)
    response = client.post(f"/campaigns/imports/{job.pk}/map/", {
        "map_email": "1", "has_header": "on", "action": "import"})
    assert response.status_code == 200
    assert "No row can be imported" in body(response)
    job.refresh_from_db()
    assert job.state == ImportJob.State.DRAFT


def test_a_failed_import_shows_why_and_retries(client_for, mia, newsletter):
    from mailroom.core.blobs import attachment_path

    client = client_for(mia)
    upload(client, newsletter, csv_bytes([["email"], ["ada@client.example"]]))
    job = ImportJob.objects.get()
    client.post(f"/campaigns/imports/{job.pk}/map/", {"map_email": "0", "has_header": "on",
                                                      "action": "import"})
    path = attachment_path(job.file_sha256)
    saved = path.read_bytes()
    path.unlink()
    tasks.contact_imports_step("w1")
    page = body(client.get(f"/campaigns/imports/{job.pk}/"))
    assert "missing from the file store" in page and "Retry from row 1" in page
    path.write_bytes(saved)
    response = client.post(f"/campaigns/imports/{job.pk}/retry/")
    assert response.status_code == 302
    tasks.contact_imports_step("w1")
    assert Subscription.objects.filter(mailing_list=newsletter).count() == 1


def test_export_lists_everyone_with_consent_evidence(client_for, mia, acme, newsletter):
    ada = Partner.objects.create(company=acme, name="Ada", email="ada@client.example")
    bea = Partner.objects.create(company=acme, name="=Bea", email="bea@client.example")
    services.subscribe(newsletter, ada, actor=mia, consent_how="Desk", consent_ip="192.0.2.1")
    services.unsubscribe(services.subscribe(newsletter, bea, actor=mia), actor=mia)
    response = client_for(mia).get(f"/campaigns/lists/{newsletter.pk}/export.csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(body(response))))
    assert rows[0] == ["email", "name", "status", "source", "consent_at", "consent_how",
                       "consent_ip", "unsubscribed_at"]
    assert rows[1][:4] == ["ada@client.example", "Ada", "subscribed", "manual"]
    assert rows[1][5:7] == ["Desk", "192.0.2.1"] and rows[1][4]
    assert rows[2][:3] == ["bea@client.example", "'=Bea", "unsubscribed"]  # no formula
    only = list(csv.reader(io.StringIO(body(client_for(mia).get(
        f"/campaigns/lists/{newsletter.pk}/export.csv?status=subscribed")))))
    assert len(only) == 2


def test_another_companys_list_and_import_are_404(client_for, gina, newsletter, mia):
    services.create_import(newsletter, actor=mia, filename="a.csv", file_format="csv",
                           content=b"email\nada@client.example\n", consent_how="Fair",
                           mapping={"email": 0}, has_header=True, total=1)
    job = ImportJob.objects.get()
    client = client_for(gina)
    for url in (f"/campaigns/lists/{newsletter.pk}/import/",
                f"/campaigns/lists/{newsletter.pk}/export.csv",
                f"/campaigns/imports/{job.pk}/", f"/campaigns/imports/{job.pk}/map/",
                f"/campaigns/imports/{job.pk}/progress/",
                f"/campaigns/imports/{job.pk}/bad-rows.csv",
                f"/campaigns/mailinglist/{newsletter.pk}/change/"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/campaigns/imports/{job.pk}/retry/").status_code == 404
    listing = body(client.get("/campaigns/mailinglist/"))
    assert "Newsletter" not in listing


def test_office_users_see_lists_but_cannot_import_export_or_change(client_for, bob,
                                                                   newsletter):
    client = client_for(bob)
    assert client.get("/campaigns/mailinglist/").status_code == 200
    assert client.get(f"/campaigns/lists/{newsletter.pk}/import/").status_code == 403
    assert upload(client, newsletter, b"email\nada@client.example\n").status_code == 403
    assert client.get(f"/campaigns/lists/{newsletter.pk}/export.csv").status_code == 403
    response = client.post(f"/campaigns/mailinglist/{newsletter.pk}/change/",
                           {"company": newsletter.company_id, "name": "Mine"})
    assert response.status_code == 403
    assert client.post("/campaigns/mailinglist/add/", {
        "company": newsletter.company_id, "name": "Mine"}).status_code == 403
    assert not ImportJob.objects.exists()
    assert MailingList.objects.get().name == "Newsletter"


def test_list_admin_counts_and_leads_to_the_wizard(client_for, mia, acme, newsletter):
    ada = Partner.objects.create(company=acme, name="Ada", email="ada@client.example")
    services.subscribe(newsletter, ada, actor=mia)
    client = client_for(mia)
    page = body(client.get(f"/campaigns/mailinglist/{newsletter.pk}/change/"))
    assert "1 subscribed" in page and "Import contacts" in page
    response = client.get(f"/campaigns/mailinglist/{newsletter.pk}/import/")
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/lists/{newsletter.pk}/import/"
    response = client.post("/campaigns/mailinglist/add/", {
        "company": acme.pk, "name": "Customers", "description": "", "active": "on"})
    assert response.status_code == 302
    assert MailingList.objects.filter(name="Customers").exists()
    assert client.get("/campaigns/subscription/").status_code == 200
    assert client.get("/campaigns/importjob/").status_code == 200


def test_unsubscribe_action_in_the_subscriptions_list(client_for, mia, acme, newsletter):
    ada = Partner.objects.create(company=acme, name="Ada", email="ada@client.example")
    subscription = services.subscribe(newsletter, ada, actor=mia)
    client = client_for(mia)
    page = body(client.get(f"/campaigns/subscription/?mailing_list__id__exact={newsletter.pk}"
                           "&status__exact=subscribed&q=ada"))
    assert "ada@client.example" in page
    response = client.post("/campaigns/subscription/", {
        "action": "unsubscribe_selected", "_selected_action": [subscription.pk]})
    assert response.status_code == 302
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.UNSUBSCRIBED


def test_office_users_follow_an_import_but_do_not_download_its_rows(client_for, mia, bob,
                                                                    newsletter):
    services.create_import(newsletter, actor=mia, filename="a.csv", file_format="csv",
                           content=b"email\nnobody\n", consent_how="Fair",
                           mapping={"email": 0}, has_header=True, total=1)
    job = ImportJob.objects.get()
    services.start_import(job, actor=mia, mapping={"email": 0}, has_header=True, total=1)
    tasks.contact_imports_step("w1")
    client = client_for(bob)
    page = body(client.get(f"/campaigns/imports/{job.pk}/"))
    assert "1 row left out" in page and "bad-rows.csv" not in page and "Retry" not in page
    assert client.get(f"/campaigns/imports/{job.pk}/bad-rows.csv").status_code == 403
    assert client.post(f"/campaigns/imports/{job.pk}/retry/").status_code == 403


def test_an_excel_file_goes_through_the_wizard(client_for, mia, newsletter):
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["Name", "Email address", "Country"])
    book.active.append(["Ada", "ada@client.example", "FR"])
    out = io.BytesIO()
    book.save(out)
    client = client_for(mia)
    response = upload(client, newsletter, out.getvalue(), "people.xlsx")
    job = ImportJob.objects.get()
    assert response.status_code == 302 and job.file_format == "xlsx"
    assert job.mapping == {"email": 1, "name": 0, "country": 2}
    client.post(f"/campaigns/imports/{job.pk}/map/", {
        "map_email": "1", "map_name": "0", "map_country": "2", "has_header": "on",
        "action": "import"})
    tasks.contact_imports_step("w1")
    subscription = Subscription.objects.get(mailing_list=newsletter)
    assert subscription.email == "ada@client.example"
    assert str(subscription.partner.country) == "FR"


def test_a_filename_with_control_characters_is_cleaned(client_for, mia, newsletter):
    response = upload(client_for(mia), newsletter, b"email\nada@client.example\n",
                      "peo\x00ple\r.csv")
    assert response.status_code == 302
    assert ImportJob.objects.get().filename == "people.csv"
