"""Test an address: the dry-run trace with the deciding rule, in the user's company."""

from __future__ import annotations

from django.urls import reverse

from mailroom.incoming.models import InboundMail

PAGE = reverse("incoming:test_address")


def test_page_renders(client_for, bob):
    response = client_for(bob).get(PAGE)
    assert response.status_code == 200
    assert 'id="test-address-form"' in response.content.decode()


def test_known_alias_shows_the_deciding_rule(client_for, bob, domain):
    response = client_for(bob).post(PAGE, {"sender": "ada@client.example",
                                           "recipient": "support@acme.test",
                                           "subject": "Help", "headers": ""})
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="test-trace"' in html
    deciding = response.context["result"]["deciding"]
    assert deciding["rule"] == "post" and deciding["decision"] == "created"
    assert 'data-deciding="true" data-rule="post"' in html
    assert "Created a record" in html and "support@acme.test" in html
    assert not InboundMail.objects.exists()  # rolled back


def test_unknown_address_is_refused(client_for, bob, domain):
    response = client_for(bob).post(PAGE, {"sender": "ada@client.example",
                                           "recipient": "nobody@acme.test"})
    html = response.content.decode()
    assert response.context["result"]["deciding"]["decision"] == "refused"
    assert "Refused" in html


def test_extra_headers_reach_the_router(client_for, bob, domain):
    response = client_for(bob).post(PAGE, {
        "sender": "ada@client.example", "recipient": "support@acme.test",
        "headers": "Auto-Submitted: auto-replied\nX-Test: 1"})
    rows = response.context["result"]["rows"]
    loop = next(row for row in rows if row["rule"] == "loop")
    assert "auto" in loop["note"].lower(), rows
    assert rows[-1]["decision"] == "dropped", rows


def test_bad_header_lines_are_a_field_error(client_for, bob, domain):
    response = client_for(bob).post(PAGE, {"sender": "ada@client.example",
                                           "recipient": "support@acme.test",
                                           "headers": "not a header"})
    assert "headers" in response.context["form"].errors
    assert response.context["result"] is None


def test_runs_in_the_current_company(client_for, charlie, domain):
    response = client_for(charlie).post(PAGE, {"sender": "ada@client.example",
                                               "recipient": "support@acme.test"})
    assert response.context["result"]["deciding"]["decision"] == "refused"


def test_needs_view_alias_permission(client_for, bob, domain):
    from django.contrib.auth.models import Group

    bob.groups.set([Group.objects.create(name="No rights")])
    assert client_for(bob).get(PAGE).status_code == 403
