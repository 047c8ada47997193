"""The chatter panel's views, through Django's test client (the browser suite drives the UI)."""

from __future__ import annotations

import io

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from mailroom.chatter import services
from mailroom.chatter.models import Attachment, Follower, Message
from mailroom.chatter.views import PAGE_SIZE
from mailroom.core import blobs

HTMX = {"HTTP_HX_REQUEST": "true"}


def ct_id(record) -> int:
    return ContentType.objects.get_for_model(record).pk


def url(name: str, record, *extra) -> str:
    return reverse(f"chatter:{name}", args=[ct_id(record), record.pk, *extra])


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def attachment(lead, bob):
    return services.store_attachment(lead, actor=bob, name="report.pdf",
                                     stream=io.BytesIO(b"%PDF-1.4 quarterly"))


# --- the panel and the record page ---------------------------------------------------------

def test_record_page_loads_the_panel_with_htmx(bob_client, lead):
    response = bob_client.get(reverse("admin:crm_lead_change", args=[lead.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert f'hx-get="{url("panel", lead)}"' in html
    assert '"X-CSRFToken"' in html
    assert "chatter/chatter.js" in html


def test_add_page_has_no_panel(bob_client, acme):
    response = bob_client.get(reverse("admin:crm_lead_add"))
    assert response.status_code == 200
    assert 'id="chatter"' not in response.content.decode()


def test_panel_shows_timeline_newest_first_with_tracking(bob_client, lead, bob):
    lead.stage = "qualified"
    services.save_record(lead, actor=bob)
    services.log_note(lead, actor=bob, body_text="Called the client")
    response = bob_client.get(url("panel", lead), **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index("Called the client") < html.index("Stage:") < html.index("Lead created")
    assert "New</span>" in html and "Qualified</span>" in html
    assert "chatter-badge--note" in html and "chatter-badge--system" in html
    assert "Send message" in html and "Log note" in html


def test_empty_timeline_reads_well(bob_client, acme):
    from mailroom.business.crm.models import Lead

    bare = Lead.objects.create(company=acme, name="No history")  # no service: no system line
    html = bob_client.get(url("panel", bare), **HTMX).content.decode()
    assert "No messages yet" in html
    assert "Send one or log a note" in html
    assert "No files yet" in html and "No followers yet" in html


def test_bodies_are_sanitized_again_on_display(bob_client, lead):
    Message.objects.create(company=lead.company, content_type_id=ct_id(lead), object_id=lead.pk,
                           body_html='<p>hi</p><script>alert(1)</script><img src=x onerror=y()>')
    html = bob_client.get(url("panel", lead), **HTMX).content.decode()
    assert "<p>hi</p>" in html
    assert "alert(1)" not in html and "onerror" not in html


def test_timeline_pages_older_messages(bob_client, lead, bob):
    for n in range(PAGE_SIZE + 3):
        services.log_note(lead, actor=bob, body_text=f"note {n}")
    html = bob_client.get(url("panel", lead), **HTMX).content.decode()
    assert "Show older messages" in html
    assert "note 0<" not in html and "Lead created" not in html
    oldest_shown = Message.objects.filter(body_html="<p>note 3</p>").get()
    older = bob_client.get(url("timeline", lead) + f"?before={oldest_shown.pk}", **HTMX)
    text = older.content.decode()
    assert "note 2<" in text and "note 0<" in text and "Lead created" in text
    assert "note 3<" not in text and "Show older messages" not in text


# --- posting ------------------------------------------------------------------------------

def test_log_note_returns_the_entry_out_of_band(bob_client, lead):
    response = bob_client.post(url("post", lead), {"kind": "note", "body": "Internal <b>bit</b>"},
                               **HTMX)
    assert response.status_code == 200
    assert response["HX-Trigger"] == "chatter-posted"
    html = response.content.decode()
    assert 'hx-swap-oob="afterbegin:#chatter-timeline"' in html
    assert "Internal &lt;b&gt;bit&lt;/b&gt;" in html  # typed text is text, not markup
    note = services.thread_queryset(Message, lead).first()
    assert note.message_type == Message.Type.NOTE
    assert f'id="chatter-message-{note.pk}"' in html


def test_send_message_with_files_attaches_them(bob_client, lead):
    files = [SimpleUploadedFile("a.txt", b"alpha"), SimpleUploadedFile("b.txt", b"beta")]
    response = bob_client.post(url("post", lead),
                               {"kind": "message", "body": "See attached", "files": files}, **HTMX)
    assert response.status_code == 200
    message = services.thread_queryset(Message, lead).first()
    assert message.message_type == Message.Type.COMMENT
    assert sorted(a.name for a in message.attachments.all()) == ["a.txt", "b.txt"]
    html = response.content.decode()
    assert 'id="chatter-attachments" class="chatter-box-body" hx-swap-oob="true"' in html
    assert 'id="chatter-attachment-count" hx-swap-oob="true">2<' in html


def test_files_alone_are_a_message(bob_client, lead):
    response = bob_client.post(url("post", lead), {
        "kind": "note", "body": "", "files": SimpleUploadedFile("only.txt", b"x")}, **HTMX)
    assert response.status_code == 200
    assert services.thread_queryset(Message, lead).first().attachments.count() == 1


@pytest.mark.parametrize("body", ["", "   \n  "])
def test_empty_message_is_refused_with_a_red_line(bob_client, lead, body):
    before = Message.objects.count()
    response = bob_client.post(url("post", lead), {"kind": "message", "body": body}, **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert 'class="chatter-error" role="alert"' in html
    assert "Write something or attach a file" in html
    assert Message.objects.count() == before


def test_unknown_kind_is_a_validation_error(bob_client, lead):
    response = bob_client.post(url("post", lead), {"kind": "system", "body": "x"}, **HTMX)
    assert response.status_code == 422
    assert "Select a valid choice" in response.content.decode()


def test_service_errors_show_in_the_form_keeping_the_text(bob_client, lead, settings):
    settings.MAX_ATTACHMENT_BYTES = 4
    response = bob_client.post(url("post", lead), {
        "kind": "note", "body": "keep me", "files": SimpleUploadedFile("big.bin", b"x" * 10)},
        **HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert "larger than" in html and "keep me</textarea>" in html
    assert not services.thread_queryset(Message, lead).filter(message_type="note").exists()


def test_get_is_not_allowed_on_writers(bob_client, lead):
    for name in ("post", "upload", "follow", "unfollow"):
        assert bob_client.get(url(name, lead)).status_code == 405


# --- CSRF -------------------------------------------------------------------------------

def test_csrf_is_enforced_and_the_header_token_works(bob, lead):
    client = Client(enforce_csrf_checks=True)
    client.force_login(bob)
    assert client.post(url("post", lead), {"kind": "note", "body": "x"}, **HTMX).status_code == 403
    client.get(reverse("admin:crm_lead_change", args=[lead.pk]))  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(url("post", lead), {"kind": "note", "body": "x"},
                           HTTP_X_CSRFTOKEN=token, **HTMX)
    assert response.status_code == 200


# --- attachments ---------------------------------------------------------------------------

def test_upload_lists_the_file(bob_client, lead):
    response = bob_client.post(url("upload", lead),
                               {"files": SimpleUploadedFile("plan.txt", b"the plan")},
                               HTTP_HX_TARGET="chatter-attachments", **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert "plan.txt" in html
    assert 'id="chatter-attachment-count" hx-swap-oob="true">1<' in html
    stored = services.thread_queryset(Attachment, lead).get()
    assert stored.message_id is None
    assert blobs.attachment_path(stored.sha256).read_bytes() == b"the plan"


def test_upload_without_file_is_a_red_line(bob_client, lead):
    response = bob_client.post(url("upload", lead), {}, **HTMX)
    assert response.status_code == 422
    assert "Choose a file to upload." in response.content.decode()


def test_download_headers_and_bytes(bob_client, attachment):
    response = bob_client.get(reverse("chatter:download", args=[attachment.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="report.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/pdf"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == b"%PDF-1.4 quarterly"


def test_active_content_downloads_as_bytes(bob_client, lead, bob):
    page = services.store_attachment(lead, actor=bob, name="evil.html",
                                     stream=io.BytesIO(b"<script>alert(1)</script>"))
    response = bob_client.get(reverse("chatter:download", args=[page.pk]))
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")


def test_download_of_a_missing_blob_is_404_not_500(bob_client, attachment):
    blobs.attachment_path(attachment.sha256).unlink()
    assert bob_client.get(reverse("chatter:download", args=[attachment.pk])).status_code == 404


# --- followers -----------------------------------------------------------------------------

def test_follow_search_and_unfollow(bob_client, lead, customer, acme):
    from mailroom.contacts.models import Partner

    Partner.objects.create(company=acme, name="Grace Hopper", email="grace@client.test")
    html = bob_client.get(url("partners", lead) + "?q=grace", **HTMX).content.decode()
    assert "Grace Hopper" in html and "Ada Lovelace" not in html

    response = bob_client.post(url("follow", lead), {"partner": customer.pk},
                               HTTP_HX_TARGET="chatter-followers", **HTMX)
    assert response.status_code == 200
    assert "Ada Lovelace" in response.content.decode()
    assert 'id="chatter-follower-count" hx-swap-oob="true">1<' in response.content.decode()
    assert services.thread_queryset(Follower, lead).filter(partner=customer).exists()

    html = bob_client.get(url("partners", lead), **HTMX).content.decode()
    assert "Ada Lovelace" not in html  # already following

    response = bob_client.post(url("unfollow", lead), {"partner": customer.pk}, **HTMX)
    assert response.status_code == 200
    assert not services.thread_queryset(Follower, lead).exists()


def test_contact_of_another_company_cannot_follow(dana, lead, globex):
    from mailroom.contacts.models import Partner

    outsider = Partner.objects.create(company=globex, name="Globex buyer")
    client = Client()
    client.force_login(dana)  # dana sees both companies' contacts
    response = client.post(url("follow", lead), {"partner": outsider.pk}, **HTMX)
    assert response.status_code == 422
    assert "another company" in response.content.decode()
    assert not Follower.objects.exists()


def test_contact_the_user_cannot_see_does_not_exist(bob_client, lead, globex):
    from mailroom.contacts.models import Partner

    hidden = Partner.objects.create(company=globex, name="Hidden")
    response = bob_client.post(url("follow", lead), {"partner": hidden.pk}, **HTMX)
    assert response.status_code == 422
    assert "That contact does not exist." in response.content.decode()
    assert "Hidden" not in response.content.decode()


# --- isolation: 404, never 403 -------------------------------------------------------------

def test_every_chatter_url_is_404_for_other_companies(charlie, lead, attachment, customer):
    client = Client()
    client.force_login(charlie)
    gets = ["panel", "timeline", "partners"]
    posts = {"post": {"kind": "note", "body": "x"}, "upload": {
        "files": SimpleUploadedFile("x.txt", b"x")}, "follow": {"partner": customer.pk},
        "unfollow": {"partner": customer.pk}}
    for name in gets:
        assert client.get(url(name, lead), **HTMX).status_code == 404, name
    for name, data in posts.items():
        assert client.post(url(name, lead), data, **HTMX).status_code == 404, name
    assert client.get(reverse("chatter:download", args=[attachment.pk])).status_code == 404
    assert Message.objects.filter(author_user=charlie).count() == 0
    assert Attachment.objects.count() == 1


def test_unknown_or_foreign_record_types_are_404(bob_client, lead, acme):
    company_ct = ContentType.objects.get_for_model(acme).pk  # not a chatter record type
    assert bob_client.get(reverse("chatter:panel", args=[company_ct, acme.pk])).status_code == 404
    assert bob_client.get(reverse("chatter:panel", args=[999999, 1])).status_code == 404
    assert bob_client.get(reverse("chatter:panel", args=[ct_id(lead), 999999])).status_code == 404


def test_signed_out_users_go_to_the_login_form(client, lead):
    response = client.get(url("panel", lead))
    assert response.status_code == 302 and "/login/" in response["Location"]
    response = client.post(url("post", lead), {"kind": "note", "body": "x"}, **HTMX,
                           HTTP_HX_CURRENT_URL="http://testserver/crm/lead/1/change/")
    assert response["HX-Redirect"].startswith("/login/?next=")
    assert "%2Fcrm%2Flead%2F1%2Fchange%2F" in response["HX-Redirect"]
    assert not Message.objects.filter(message_type="note").exists()


# --- company switcher ----------------------------------------------------------------------

def test_header_switcher_lists_the_users_companies(dana, acme, globex):
    client = Client()
    client.force_login(dana)
    html = client.get(reverse("admin:crm_lead_changelist")).content.decode()
    assert 'id="company-switcher"' in html
    assert f'<option value="{acme.pk}" selected>Acme Corp</option>' in html
    assert f'<option value="{globex.pk}">Globex</option>' in html
    assert reverse("core:switch_company") in html


def test_single_company_users_see_only_the_name(bob_client):
    html = bob_client.get(reverse("admin:crm_lead_changelist")).content.decode()
    assert 'id="company-switcher"' not in html
    assert 'id="company-current"' in html and "Acme Corp" in html


def test_switching_changes_lists_and_goes_back(dana, lead, globex_lead, globex):
    client = Client()
    client.force_login(dana)
    changelist = reverse("admin:crm_lead_changelist")
    assert "Big deal" in client.get(changelist).content.decode()
    response = client.post(reverse("core:switch_company"),
                           {"company": globex.pk, "next": changelist})
    assert response.status_code == 302 and response["Location"] == changelist
    html = client.get(changelist).content.decode()
    assert "Globex secret deal" in html and "Big deal" not in html
    assert "You are now working in Globex." in html


def test_switching_to_a_foreign_company_is_refused(bob, globex):
    client = Client()
    client.force_login(bob)
    response = client.post(reverse("core:switch_company"), {"company": globex.pk})
    assert response.status_code == 400
    bob.refresh_from_db()
    assert bob.current_company.name == "Acme Corp"
    assert client.post(reverse("core:switch_company"), {"company": "nope"}).status_code == 400


def test_switch_never_redirects_off_site(dana, globex):
    client = Client()
    client.force_login(dana)
    response = client.post(reverse("core:switch_company"),
                           {"company": globex.pk, "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_switch_restarts_lists_at_their_first_page(dana, globex):
    client = Client()
    client.force_login(dana)
    response = client.post(reverse("core:switch_company"),
                           {"company": globex.pk, "next": "/crm/lead/?p=7&o=2"})
    assert response["Location"] == "/crm/lead/?o=2"


def test_unknown_timeline_cursor_returns_nothing(bob_client, lead):
    response = bob_client.get(url("timeline", lead) + "?before=999999", **HTMX)
    assert response.status_code == 200
    assert "Lead created" not in response.content.decode()
