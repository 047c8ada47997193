"""Hostile parameters never make the back office answer 500.

Every URL pattern outside /api/ (the API has its own fuzzing, test_api_schemathesis.py) is
enumerated from the URLconf, so a new view or admin is covered unasked. Signed in as an
Administrator, each is called with hostile values — non-integers, integers past 64 bits
(2**63, 10**30), negatives, NUL bytes, very long strings, unicode digits that `str.isdigit`
accepts and `int` refuses, empty — in its path, its query string and its form body, one
parameter at a time on top of otherwise valid values (so checks further down are reached),
and all at once. Deterministic: an explicit list, no randomness.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import pytest
from django.contrib import admin
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import make_user

pytestmark = [pytest.mark.django_db, pytest.mark.fuzz]

BIG = [str(2**63), str(10**30)]
HOSTILE = ["abc", "-1", "0", "1.5", *BIG, "\x00", "a\x00b", "9" * 5000, "x" * 5000,
           "\u00b2", "\u0661\u0662", "\u00e9\U0001f600\u202e", "", " 7 ", "1,2,\u00b3"]
PATH_INT = ["0", *BIG, "9" * 40]
PATH_TEXT = [*PATH_INT, "abc", "-1", "%00", "x" * 1000, quote("\u00e9\U0001f600"),
             quote("\u00b2"), "a.b"]
# The admin is large: one parameter at a time gets the values most likely to break it.
SHARP = ["abc", BIG[0], "\x00", "\u00b2", "-1"]
ADMIN_PATH = ["abc", *BIG, "%00", quote("\u00e9\U0001f600")]
# The admin's own parameters: search, ordering, page, popup and the action form.
ADMIN_LIST_PARAMS = ["q", "o", "p", "e", "_to_field", "id__exact", "company__id__exact",
                     "_facets"]


@dataclass
class Route:
    name: str  # "namespace:name" or "<unnamed>"
    route: str
    converters: dict = field(default_factory=dict)

    def path(self, values: dict[str, str]) -> str:
        def replace(match: re.Match) -> str:
            return values[match.group("name")]

        return "/" + re.sub(r"<(?:(?P<conv>\w+):)?(?P<name>\w+)>", replace, self.route)


def _walk(patterns, prefix: str = "", namespace: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = pattern.namespace or ""
            ns = f"{namespace}:{inner}" if namespace and inner else (inner or namespace)
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            name = pattern.name or "<unnamed>"
            name = f"{namespace}:{name}" if namespace else name
            converters = getattr(pattern.pattern, "converters", {})
            yield Route(name, prefix + str(pattern.pattern), converters)


def all_routes() -> list[Route]:
    return [r for r in _walk(get_resolver().url_patterns)
            if not r.route.startswith(("api/", "^media/"))]


def custom_routes() -> list[Route]:
    return [r for r in all_routes() if not r.name.startswith("admin:")]


def admin_routes() -> list[Route]:
    return [r for r in all_routes() if r.name.startswith("admin:")]


def model_admins() -> list:
    return sorted(admin.site._registry.values(), key=lambda ma: ma.opts.label)


# --- the world the hostile requests land in ------------------------------------------------

@pytest.fixture
def world(acme, globex, settings):
    """An Administrator of acme, and one real row of the kinds the custom views read, so
    valid baselines get past their 404s and hostile values reach the checks behind."""
    from django.contrib.contenttypes.models import ContentType

    from mailroom.activities import services as activities
    from mailroom.activities.tokens import make_token
    from mailroom.business.crm.models import Lead
    from mailroom.campaigns import campaign_services
    from mailroom.campaigns import services as campaigns
    from mailroom.campaigns.campaign_models import Campaign
    from mailroom.campaigns.models import MailingList
    from mailroom.chatter import services as chatter
    from mailroom.contacts.models import Partner
    from mailroom.digests.models import Digest, Tip
    from mailroom.digests.services import save_digest
    from mailroom.digests.tip_links import click_token, vote_token
    from mailroom.digests.unsubscribe import restore_token, unsubscribe_token
    from mailroom.outgoing import services as outgoing
    from mailroom.routing.models import AliasDomain
    from mailroom.templating import services as templating
    from mailroom.templating.models import EmailTemplate
    from tests.incoming.ui.conftest import stored_mail

    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 100_000
    alice = make_user("alice", [acme], "Administrator")
    alice.is_superuser = False
    partner = Partner.objects.create(company=acme, name="Ada", email="ada@client.example")
    lead = Lead.objects.create(company=acme, name="Printer deal", partner=partner)
    message = chatter.post_message(lead, actor=alice, subject="Hi", body_text="Hello")
    template = templating.save_template(EmailTemplate(
        company=acme, name="Lead hello", record_type="crm.lead",
        partner_to="{{ object.partner.id }}", subject="About {{ object.name }}",
        body_html="<p>Hello</p>"), actor=alice)
    mail = outgoing.enqueue(company=acme, email_from="Acme <billing@acme.example>",
                            to=["ada@client.example"], subject="Hi", html="<p>Hi</p>")
    from django.contrib.contenttypes.models import ContentType as _ContentType

    from mailroom.templating.mass_services import start_mass
    mass_job = start_mass(template, _ContentType.objects.get_for_model(Lead), [lead.pk],
                          actor=alice, company=acme, batch="fuzz-mass")
    inbound = stored_mail(acme)
    approval = activities.schedule(lead, actor=alice, activity_type="approval",
                                   due_date=datetime.date(2026, 12, 7), assignee=alice)
    digest = save_digest(Digest(company=acme, name="Weekly pulse", kpis=["crm.new_leads"]),
                         actor=alice, recipients=[alice])
    tip = Tip.objects.create(title="Use aliases", body="<p>Hi</p>")
    mailing_list = campaigns.save_list(MailingList(company=acme, name="News"), actor=alice)
    contact_import = campaigns.create_import(
        mailing_list, actor=alice, filename="people.csv", file_format="csv",
        content=b"email,name\nada@client.example,Ada\n", consent_how="Trade fair",
        mapping={"email": 0, "name": 1}, has_header=True, total=1)
    AliasDomain.objects.create(company=acme, name="news.acme.example")
    campaign = campaign_services.save_campaign(Campaign(
        company=acme, name="Spring news", subject="Hi {{ contact.name }}",
        email_from="Acme <hello@news.acme.example>", body_html="<p>Hi</p>"), actor=alice,
        lists=[mailing_list])
    from mailroom.campaigns import segments as campaign_segments
    from mailroom.campaigns.campaign_models import Segment

    segment = campaign_segments.save_segment(Segment(company=acme, name="Buyers", rules=[
        {"field": "record:crm.lead", "op": "has", "value": {"where": "stage",
                                                            "equals": "won"}}]), actor=alice)
    from mailroom.campaigns import links as campaign_links
    from mailroom.campaigns import tokens as campaign_tokens
    from mailroom.campaigns.campaign_models import CampaignLink, CampaignRecipient
    from mailroom.campaigns.models import Subscription

    subscription = campaigns.subscribe(mailing_list, partner, actor=alice,
                                       consent_how="Fuzz")
    trace = CampaignRecipient.objects.create(campaign=campaign, partner=partner,
                                             subscription=subscription, email=partner.email)
    link = CampaignLink.objects.create(campaign=campaign, url="https://acme.example/")
    unsubscribe = campaign_links.unsubscribe_token(acme.pk, trace.pk)
    track = campaign_links.track_token(acme.pk, trace.pk)
    confirm = campaign_tokens.make(campaign_tokens.CONFIRM, acme.pk, subscription.pk)
    Subscription.objects.filter(pk=subscription.pk).update(status="unconfirmed")
    from mailroom.outgoing.models import MailServer

    relay = MailServer.objects.create(company=acme, name="Fuzz relay", host="smtp.example",
                                      feedback_kind="mailgun", feedback_secret="key-fuzz")
    client = Client()
    client.force_login(alice)
    ct = ContentType.objects.get_for_model(Lead)
    return {
        "client": client, "user": alice, "lead": lead, "template": template,
        "ids": {"content_type_id": str(ct.pk), "object_id": str(lead.pk),
                "message_id": str(message.pk), "attachment_id": "1",
                "template_id": str(template.pk), "record_type": "crm.lead",
                "mail_pk": str(mail.pk), "inbound_pk": str(inbound.pk),
                "activity_id": str(approval.pk), "token": make_token(approval),
                "digest_id": str(digest.pk), "list_id": str(mailing_list.pk),
                "segment_id": str(segment.pk),
                "job_id": str(contact_import.pk), "campaign_id": str(campaign.pk)},
        "baselines": {
            "chatter:timeline": {"before": str(message.pk)},
            "chatter:post": {"body": "Hello", "subject": "Hi", "message_type": "comment"},
            "chatter:follow": {"partner": str(partner.pk)},
            "chatter:unfollow": {"partner": str(partner.pk)},
            "chatter:partners": {"q": "Ada"},
            "chatter:download": {"inline": "1"},
            "chatter:message_body": {"images": "1"},
            "core:switch_company": {"company": str(acme.pk), "next": "/"},
            "documents:pdf": {"download": "1"},
            "outgoing:mail_action": {"from": "chatter", "next": "/"},
            "incoming:test_address": {"address": "support@acme.test",
                                      "envelope_from": "ada@client.example"},
            "templating:preview": {"record": str(lead.pk), "lang": "en_US"},
            "templating:send_test": {"record": str(lead.pk), "lang": "en_US"},
            "templating:compose_from_panel": {"panel": f"/chatter/{ct.pk}/{lead.pk}/"},
            "templating:compose": {"template": str(template.pk), "key": "k1",
                                   "subject": "Hi", "body": "<p>Hi</p>", "lang": "en_US",
                                   "when": "now", "partners": str(partner.pk),
                                   "to": "ada@client.example", "cc": "",
                                   "scheduled_at": ""},
            "templating:compose_fill": {"template": str(template.pk), "key": "k1"},
            "templating:compose_recipients": {"q": "Ada"},
            "templating:compose_preview": {"template": str(template.pk), "subject": "Hi",
                                           "body": "<p>Hi</p>", "partners": str(partner.pk),
                                           "to": "ada@client.example", "lang": "en_US"},
            "templating:mention_users": {"panel": f"/chatter/{ct.pk}/{lead.pk}/", "q": "al"},
            "templating:mass_review": {"content_type": str(ct.pk), "template": str(template.pk),
                                       "ids": str(lead.pk)},
            "templating:mass_chunk": {"content_type": str(ct.pk), "template": str(template.pk),
                                      "batch": "b1", "ids": str(lead.pk), "offset": "0"},
            "activities:panel": {},
            "activities:schedule": {"activity_type": "call", "summary": "Call Ada",
                                    "due_date": "2026-12-07", "assignee": str(alice.pk),
                                    "note": "About the quote"},
            "activities:done": {"feedback": "Done"},
            "activities:cancel": {},
            "activities:decide_in_panel": {"choice": "approve", "feedback": "OK"},
            "activities:decide": {"choice": "approve", "feedback": "OK"},
            "chatter:inbox": {"show": "unread"},
            "chatter:inbox_bell": {},
            "chatter:inbox_mark": {"source": "notifications", "key": "all", "read": "1",
                                   "show": "all"},
            "core:preferences": {"first_name": "Mia", "last_name": "M", "language": "en_US",
                                 "timezone": "UTC", "notify_by": "email"},
            "demo:caught_list": {"p": "1"},
            "digests:preview": {"user": str(alice.pk)},
            "digests:preview_body": {"user": str(alice.pk)},
            "digests:send_now": {"to": "me"},
            "digests:set_active": {"active": "1"},
            "digests:restore_periodicity": {},
            "digests:unsubscribe": {"action": "unsubscribe"},
            "digests:restore": {},
            "digests:tip_click": {},
            "digests:tip_vote": {"answer": "yes"},
            "letters:send": {"postage": "standard", "duplex": "on", "cover_page": "on",
                             "partner": str(partner.pk)},
            "letters:send_many": {"ids": str(lead.pk), "offset": "0", "key": "k1"},
            "letters:letter_pdf": {"download": "1"},
            "letters:batch_pdf": {"download": "1"},
            "letters:webhook": {},
            "campaigns:import_upload": {"consent_how": "Trade fair"},
            "campaigns:import_map": {"map_email": "0", "map_name": "1", "map_tags": "",
                                     "has_header": "on", "action": "preview"},
            "campaigns:import_job": {},
            "campaigns:import_progress": {},
            "campaigns:import_retry": {},
            "campaigns:bad_rows_csv": {},
            "campaigns:export_csv": {"status": "subscribed"},
            "campaigns:segment_new": {"name": "Fuzz", "match": "all", "row": "0",
                                      "c0_field": "country", "c0_op": "in", "c0_value": "BE"},
            "campaigns:segment_edit": {"name": "Fuzz", "match": "any", "row": "0",
                                       "c0_field": "tag", "c0_op": "has", "c0_value": "1"},
            "campaigns:segment_row": {"i": "0", "add": "1", "row": "0", "c0_was": "list",
                                      "c0_field": "record:crm.lead", "c0_where": "stage",
                                      "c0_days": "30"},
            "campaigns:segment_count": {"segment": str(segment.pk), "match": "all", "row": "0",
                                        "c0_field": "record:crm.lead", "c0_op": "has",
                                        "c0_where": "stage", "c0_equals": "won",
                                        "c0_date": "created_at", "c0_days": "30"},
            "campaigns:campaign": {"status": "queued", "page": "1"},
            "campaigns:deliverability": {"domain": "news.acme.example", "fresh": "1"},
            "campaigns_public:preferences": {"action": "save", "list": str(mailing_list.pk)},
            "campaigns_public:one_click": {"List-Unsubscribe": "One-Click"},
            "campaigns_public:open": {},
            "campaigns_public:click": {},
            "campaigns_public:confirm": {},
            "campaigns:campaign_audience": {"campaign": str(campaign.pk), "edited": "1",
                                            "lists": str(mailing_list.pk),
                                            "exclude_lists": str(mailing_list.pk)},
            "campaigns:campaign_progress": {},
            "campaigns:campaign_send": {},
            "campaigns:campaign_schedule": {"scheduled_at": "2031-01-01T10:00"},
            "campaigns:campaign_unschedule": {},
            "campaigns:campaign_pause": {},
            "campaigns:campaign_resume": {},
            "campaigns:campaign_cancel": {},
            "campaigns:campaign_duplicate": {},
            "campaigns:campaign_test": {"addresses": "ada@client.example"},
            "campaigns:campaign_recipients_csv": {"status": "queued"},
            "feedback_hooks:receive": {"signature": "x", "event-data": "y"},
            "templating:mass_job": {},
            "templating:mass_cancel": {},
        },
        # path values that differ per route (each signed link has its own token)
        "paths": {
            "digests:unsubscribe": {"token": unsubscribe_token(digest, alice)},
            "digests:restore": {"token": restore_token(digest, alice)},
            "digests:tip_click": {"token": click_token(tip, alice, "https://acme.example/")},
            "digests:tip_vote": {"token": vote_token(tip, alice)},
            "campaigns_public:preferences": {"token": unsubscribe},
            "campaigns_public:one_click": {"token": unsubscribe},
            "campaigns_public:open": {"token": track},
            "campaigns_public:click": {"token": track, "number": str(link.pk)},
            "campaigns_public:confirm": {"token": confirm},
            "feedback_hooks:receive": {"token": relay.feedback_token},
            "templating:mass_job": {"job_id": str(mass_job.pk)},
            "templating:mass_cancel": {"job_id": str(mass_job.pk)},
        },
    }


def _valid_path_values(route: Route, world) -> dict[str, str]:
    ids = {**world["ids"], **world["paths"].get(route.name, {})}
    values = {}
    for name in route.converters:
        if name == "pk":
            values[name] = ids["inbound_pk"] if route.route.startswith("incoming/") else (
                ids["mail_pk"])
        elif name == "action":
            values[name] = "retry"
        else:
            values[name] = ids.get(name, "1")
    return values


def _hostile_path_values(route: Route, name: str) -> list[str]:
    converter = type(route.converters[name]).__name__
    candidates = PATH_INT if converter == "IntConverter" else PATH_TEXT
    regex = re.compile(route.converters[name].regex)
    return [v for v in candidates if regex.fullmatch(v)]


@dataclass
class Failures:
    items: list[str] = field(default_factory=list)

    def call(self, client: Client, method: str, path: str, params: dict | None = None) -> None:
        params = params or {}
        try:
            if method == "get":
                url = path + ("?" + urlencode(params) if params else "")
                response = client.get(url)
            else:
                response = client.post(path, params)
        except Exception as exc:  # the test client re-raises what would be a 500
            self.items.append(f"{method.upper()} {path} {_short(params)}: "
                              f"{type(exc).__name__}: {str(exc)[:200]}")
            return
        if response.status_code >= 500:
            self.items.append(f"{method.upper()} {path} {_short(params)}: "
                              f"{response.status_code}")


def _short(params: dict) -> str:
    return repr({k: (v[:20] + "…" if len(v) > 20 else v) for k, v in params.items()})[:300]


def _fuzz_route(route: Route, world, baseline: dict[str, str], methods=("get", "post")
                ) -> list[str]:
    client = world["client"]
    failures = Failures()
    valid = _valid_path_values(route, world)
    for name in route.converters:
        for value in _hostile_path_values(route, name):
            for method in methods:
                failures.call(client, method, route.path({**valid, name: value}), baseline)
    base_path = route.path(valid)
    for method in methods:
        failures.call(client, method, base_path, baseline)
        for value in HOSTILE:
            failures.call(client, method, base_path, {k: value for k in baseline} or
                          {"q": value})
            for key in baseline:
                failures.call(client, method, base_path, {**baseline, key: value})
    return failures.items


# --- custom views --------------------------------------------------------------------------

CUSTOM = custom_routes()


def test_every_custom_view_has_a_baseline(world):
    """A new view must say which parameters it reads, so the fuzzing reaches them."""
    no_params = {"chatter:panel", "chatter:upload", "outgoing:dashboard", "outgoing:mail_body",
                 "incoming:raw", "incoming:reprocess", "demo:caught_detail", "demo:caught_body",
                 "demo:caught_raw"}
    missing = {r.name for r in CUSTOM} - set(world["baselines"]) - no_params
    assert not missing


@pytest.mark.parametrize("route", CUSTOM, ids=lambda r: r.name)
def test_custom_view_survives_hostile_parameters(route, world):
    baseline = world["baselines"].get(route.name, {})
    failures = _fuzz_route(route, world, baseline)
    assert not failures, "\n".join(failures)


# --- the admin -----------------------------------------------------------------------------

def _admin_params(model_admin) -> list[str]:
    names = list(ADMIN_LIST_PARAMS)
    for entry in model_admin.list_filter:
        field_name = entry[0] if isinstance(entry, tuple | list) else entry
        if isinstance(field_name, str):
            names += [field_name, *(f"{field_name}__{lookup}" for lookup in (
                "exact", "id__exact", "in", "gte"))]
        else:
            names.append(getattr(field_name, "parameter_name", None) or "filter")
    return names


@pytest.mark.parametrize("model_admin", model_admins(), ids=lambda ma: ma.opts.label_lower)
def test_admin_changelist_survives_hostile_filters_and_actions(model_admin, world):
    client = world["client"]
    failures = Failures()
    opts = model_admin.opts
    changelist = f"/{opts.app_label}/{opts.model_name}/"
    names = _admin_params(model_admin)
    for value in HOSTILE:
        failures.call(client, "get", changelist, {name: value for name in names})
    for value in SHARP:
        for name in names:
            failures.call(client, "get", changelist, {name: value})
    request = client.get(changelist).wsgi_request
    actions = list(model_admin.get_actions(request)) or ["delete_selected"]
    for action in actions:
        for value in SHARP:
            failures.call(client, "post", changelist, {
                "action": action, "index": "0", "_selected_action": value})
        failures.call(client, "post", changelist, {"action": action, "index": "abc",
                                                   "select_across": "\x00"})
    assert not failures.items, "\n".join(failures.items)


@pytest.mark.parametrize("model_admin", model_admins(), ids=lambda ma: ma.opts.label_lower)
def test_admin_object_views_survive_hostile_ids_and_form_values(model_admin, world):
    client = world["client"]
    failures = Failures()
    opts = model_admin.opts
    base = f"/{opts.app_label}/{opts.model_name}/"
    for value in ADMIN_PATH:
        for suffix in ("change/", "history/", "delete/", ""):
            failures.call(client, "get", f"{base}{value}/{suffix}")
        failures.call(client, "post", f"{base}{value}/change/", {"name": "x"})
        failures.call(client, "post", f"{base}{value}/delete/", {"post": "yes"})
    for route in admin_routes():  # the admin's custom object views (Test, Fetch now, …)
        prefix = f"{opts.app_label}/{opts.model_name}/<path:object_id>/"
        if route.route.startswith(prefix) and route.route[len(prefix):] not in (
                "change/", "history/", "delete/", ""):
            for value in ADMIN_PATH:
                for method in ("get", "post"):
                    failures.call(client, method, route.path({"object_id": value}))
    request = client.get(base).wsgi_request
    form_fields = []  # read-only admins (the audit log, locked logins) have no add form
    if model_admin.has_add_permission(request):
        form_fields = list(model_admin.get_form(request)().fields)
    for value in HOSTILE:
        failures.call(client, "post", f"{base}add/", {name: value for name in form_fields})
    assert not failures.items, "\n".join(failures.items)


def test_admin_site_views_survive_hostile_parameters(world):
    client = world["client"]
    failures = Failures()
    for path in ("/", "/search/", "/autocomplete/", "/jsi18n/", "/password_change/"):
        for value in HOSTILE:
            failures.call(client, "get", path, {
                "q": value, "term": value, "app_label": value, "model_name": value,
                "field_name": value, "page": value})
    for ct in PATH_TEXT:
        for obj in PATH_TEXT[:4]:
            failures.call(client, "get", f"/r/{ct}/{obj}/")
    assert not failures.items, "\n".join(failures.items)


# --- the findings that started this file ---------------------------------------------------

@pytest.mark.parametrize(("ids", "offset"), [
    ("{lead}", "abc"), ("{lead}", "1.5"), ("{lead}", "\u00b2"), ("{lead}", "9" * 5000),
    (str(2**63), "0"), (str(10**30), "0"), ("{lead},\u00b2", "0"),
])
def test_mass_chunk_answers_422_for_a_bad_offset_or_id(world, ids, offset):
    from mailroom.outgoing.models import OutgoingMail

    baseline = world["baselines"]["templating:mass_chunk"]
    response = world["client"].post("/templating/mass/chunk/", {
        **baseline, "ids": ids.format(lead=world["lead"].pk), "offset": offset})
    assert response.status_code == 422
    assert "invalid" in response.content.decode()
    assert not OutgoingMail.objects.filter(subject__startswith="About").exists()


def test_mass_chunk_still_sends_a_valid_chunk(world):
    from mailroom.outgoing.models import OutgoingMail

    response = world["client"].post("/templating/mass/chunk/",
                                    world["baselines"]["templating:mass_chunk"])
    assert response.status_code == 200
    assert OutgoingMail.objects.filter(subject="About Printer deal").count() == 1


@pytest.mark.parametrize("object_id", [str(2**63), str(10**30)])
def test_a_huge_id_in_an_admin_change_url_is_not_found(world, object_id):
    response = world["client"].get(f"/crm/lead/{object_id}/change/")
    assert response.status_code in (302, 404)  # the admin's "doesn't exist" redirect


@pytest.mark.parametrize("value", [str(2**63), "abc", "\x00"])
def test_admin_actions_ignore_selected_ids_no_row_can_have(world, value):
    from mailroom.business.crm.models import Lead

    response = world["client"].post("/crm/lead/", {
        "action": "delete_selected", "index": "0", "_selected_action": value})
    # nothing to confirm, back to the list, or a NUL refused outright
    assert response.status_code in (200, 302, 400)
    assert Lead.objects.filter(pk=world["lead"].pk).exists()
