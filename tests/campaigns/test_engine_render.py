"""The campaign renderer: finished once per language, personalised per recipient, the same
mail whichever path renders it, with the bulk-mail headers and a visible unsubscribe link."""

from __future__ import annotations

import html
import re

import pytest

from mailroom.campaigns import tokens
from mailroom.campaigns.engine import audience
from mailroom.campaigns.engine.render import CampaignRenderer
from mailroom.lib.sandbox import TemplateError
from mailroom.outgoing import checks
from tests.campaigns.test_engine import campaign, make_list, person, subscribe, traces


@pytest.fixture
def news(acme):
    news = make_list(acme, "News")
    subscribe(news, person(acme, "ada@client.example", "Ada Lovelace"))
    subscribe(news, person(acme, "grete@client.example", "Grete Müller", language="de_DE"))
    return news


def recipients(sent) -> dict:
    audience.resolve(sent)
    return traces(sent)


def test_the_simple_and_the_per_recipient_path_give_the_same_mail(acme, news):
    sent = campaign(acme, lists=[news], layout="branded")
    ada = recipients(sent)["ada@client.example"]
    renderer = CampaignRenderer(sent)

    fast, slow = renderer.render(ada), renderer.render(ada, slow=True)

    assert fast == slow
    assert fast.subject == "News for Ada"
    assert "Hello Ada Lovelace," in fast.html and "Hello Ada Lovelace," in fast.text
    assert "<p>Acme Corp</p>" in fast.html.replace("\n", "")
    assert "style=" in fast.html  # the layout's CSS is inlined


def test_a_body_with_logic_is_rendered_per_recipient_with_the_same_result(acme, news):
    logic = campaign(acme, lists=[news], name="Logic",
                     body_html="<p>Hello {% if contact.name %}{{ contact.name }}"
                               "{% else %}friend{% endif %},</p>")
    simple = campaign(acme, lists=[news], name="Logic",
                      body_html="<p>Hello {{ contact.name }},</p>")
    ada_logic = recipients(logic)["ada@client.example"]
    ada_simple = recipients(simple)["ada@client.example"]
    with_logic = CampaignRenderer(logic)

    mail = with_logic.render(ada_logic)

    assert not with_logic._prepared  # nothing was prepared once: the slow path ran
    expected = CampaignRenderer(simple).render(ada_simple)
    same_links = re.compile(r"/l/[^\"'\s)>]+")  # each trace has its own tokens
    assert same_links.sub("/l/…", mail.html) == same_links.sub("/l/…", expected.html)
    assert same_links.sub("/l/…", mail.text) == same_links.sub("/l/…", expected.text)
    assert "Hello Ada Lovelace," in mail.html


def test_each_language_gets_its_translation_and_its_footer(acme, news, settings):
    sent = campaign(acme, lists=[news], translations=[
        ("de_DE", "Neues für {{ contact.first_name }}", "<p>Hallo {{ contact.name }}</p>")])
    rows = recipients(sent)
    renderer = CampaignRenderer(sent)

    german, english = renderer.render(rows["grete@client.example"]), renderer.render(
        rows["ada@client.example"])

    assert german.subject == "Neues für Grete" and "Hallo Grete Müller" in german.html
    assert english.subject == "News for Ada" and "Hello Ada Lovelace" in english.html
    assert 'lang="de-DE"' in german.html or "de-DE" in german.html
    assert len(renderer._prepared) == 2  # once per language, whatever the recipients


def test_headers_footer_and_preheader(acme, news, settings):
    settings.BASE_URL = "https://mail.acme.example"
    sent = campaign(acme, lists=[news], name='Spring "big" <sale>')
    ada = recipients(sent)["ada@client.example"]

    mail = CampaignRenderer(sent).render(ada)

    one_click = re.fullmatch(r"<(https://mail\.acme\.example/l/u/(\S+)/one-click)>",
                             mail.headers["List-Unsubscribe"])
    assert one_click, mail.headers
    assert tokens.read(tokens.UNSUBSCRIBE, one_click[2]) == (acme.pk, ada.pk)
    assert mail.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mail.headers["Precedence"] == "bulk"
    assert mail.headers["List-Id"] == f'"Spring big sale" <campaign-{sent.pk}.acme.example>'
    assert mail.headers["Feedback-ID"] == f"{sent.pk}:{acme.pk}:campaign:mailroom"
    assert checks.headers(mail.headers) == mail.headers  # the outbox accepts them
    # the visible footer: unsubscribe (the same one-click page) and the preference centre
    page = html.unescape(mail.html)
    assert f'href="{one_click[1]}"' in page and "Unsubscribe" in page
    assert "/l/u/" + one_click[2] + "/" in page  # the preference centre
    assert one_click[1] in mail.text
    assert "Twenty percent off everything" in mail.html  # the hidden preheader
    assert "display:none" in mail.html.replace(" ", "")


def test_braces_in_the_companys_data_are_never_read_as_a_template(acme, news):
    acme.name = "Acme {{ contact.email }} {% if 1 %}"
    acme.save()
    sent = campaign(acme, lists=[news], layout="branded")
    sent.company = acme
    ada = recipients(sent)["ada@client.example"]

    mail = CampaignRenderer(sent).render(ada)

    assert "Acme {{ contact.email }} {% if 1 %}" in html.unescape(mail.html)


def test_a_missing_field_is_a_template_error_naming_it(acme, news):
    sent = campaign(acme, lists=[news], body_html="<p>{{ contact.nmae }}</p>")
    ada = recipients(sent)["ada@client.example"]

    with pytest.raises(TemplateError, match="contact.nmae"):
        CampaignRenderer(sent).render(ada)


def test_a_test_send_sample_without_a_trace_renders(acme, news):
    from mailroom.campaigns.models import CampaignRecipient

    sent = campaign(acme, lists=[news])
    sample = CampaignRecipient(campaign=sent, email="me@acme.example", name="Me", lang="",
                               id=0)

    mail = CampaignRenderer(sent).render(sample)

    assert mail.subject == "News for Me" and "Hello Me," in mail.html


def test_a_missing_field_in_the_subject_is_an_error_too(acme, news):
    sent = campaign(acme, lists=[news], subject="Hi {{ contact.nmae }}")
    ada = recipients(sent)["ada@client.example"]

    with pytest.raises(TemplateError, match="contact.nmae"):
        CampaignRenderer(sent).render(ada)
    with pytest.raises(TemplateError, match="nmae"):
        CampaignRenderer(sent).render(ada, slow=True)


def test_links_are_tracked_per_recipient_unless_the_campaign_opts_out(acme, news):
    from mailroom.campaigns.models import CampaignLink

    sent = campaign(acme, lists=[news])
    ada = recipients(sent)["ada@client.example"]

    mail = CampaignRenderer(sent).render(ada)

    link = CampaignLink.objects.get(campaign=sent, url="https://acme.example/sale")
    click = re.search(r'href="(\S+/l/c/(\w+)/(\d+))"', mail.html)
    assert click and int(click[3]) == link.pk
    assert tokens.read(tokens.TRACK, click[2]) == (acme.pk, ada.pk)
    assert f"/l/o/{click[2]}.gif" in mail.html  # the open pixel
    assert 'href="https://acme.example/sale"' not in mail.html

    private = campaign(acme, lists=[news], name="Untracked", track_opens=False,
                       track_clicks=False)
    plain = CampaignRenderer(private).render(recipients(private)["ada@client.example"])
    assert 'href="https://acme.example/sale"' in plain.html and "/l/o/" not in plain.html


def test_a_line_break_or_nul_in_a_name_never_reaches_a_header(acme, news):
    from mailroom.campaigns.models import CampaignRecipient

    sent = campaign(acme, lists=[news], subject="News for {{ contact.name }}")
    odd = CampaignRecipient(campaign=sent, email="odd@client.example", name="Bad\r\nBcc: x\0",
                            lang="", id=0)

    mail = CampaignRenderer(sent).render(odd)

    assert mail.subject == "News for Bad Bcc: x"
    assert checks.one_line("subject", mail.subject)
