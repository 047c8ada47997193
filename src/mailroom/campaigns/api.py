"""Mailing lists, subscriptions and campaigns through the API (/api/v1/lists, /campaigns;
/segments lives in segment_api.py, mounted here).

Subscribing and unsubscribing are idempotent (the same call twice changes nothing the second
time: 200 instead of 201); on a double opt-in list a new subscriber is "unconfirmed" and gets
the confirmation mail. Rows of other companies answer 404, like rows that do not exist.
Writes go through the services, so the API refuses what the screens refuse, in the same words.

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from ninja import Query, Router, Schema
from pydantic import Field

from mailroom.api.auth import actor, require_perm
from mailroom.api.crud import ERRORS, Page, list_schema, page, row_id
from mailroom.api.errors import ApiError, field_error
from mailroom.api.writing import company_for_create
from mailroom.campaigns import campaign_services, segment_api, services, stats
from mailroom.campaigns.models import Campaign, MailingList, Subscription
from mailroom.contacts.services import find_or_create_partner
from mailroom.lib.addresses import InvalidAddress

router = Router(tags=["Campaigns"])
router.add_router("", segment_api.router)  # /segments


# --- lists and subscriptions ----------------------------------------------------------------

class ListOut(Schema):
    id: int
    company_id: int
    name: str
    description: str
    public: bool = Field(description="Offered in the preference centre.")
    double_opt_in: bool
    active: bool
    subscribed: int = Field(description="Subscriptions in the status subscribed.")


ListList = list_schema("MailingListList", ListOut)


class ListIn(Schema):
    company_id: int | None = Field(None, description="Default: your current company.")
    name: str = Field(max_length=120)
    description: str = ""
    public: bool = False
    double_opt_in: bool = False


class SubscriptionOut(Schema):
    id: int
    list_id: int
    contact_id: int
    email: str
    status: str = Field(description="subscribed, unconfirmed, unsubscribed, bounced or "
                                    "complained.")
    source: str
    consent_how: str
    consent_at: datetime | None
    consent_ip: str | None
    created_at: datetime
    unsubscribed_at: datetime | None


SubscriptionList = list_schema("SubscriptionList", SubscriptionOut)


class SubscriptionFilters(Page):
    status: str | None = None
    email: str | None = Field(None, max_length=254)


class SubscribeIn(Schema):
    email: str = Field(max_length=254)
    name: str = Field("", max_length=200)
    consent_how: str = Field(max_length=500, description="How they agreed, e.g. \"Signed up "
                                                         "on the website footer form\".")
    consent_ip: str | None = Field(None, description="From which address they agreed.")
    resubscribe: bool = Field(False, description="They left the list before and now asked "
                                                 "again (their own new consent).")


class UnsubscribeIn(Schema):
    email: str = Field(max_length=254)
    reason: str = Field("", max_length=200)


def list_out(item: MailingList) -> dict:
    return {"id": item.pk, "company_id": item.company_id, "name": item.name,
            "description": item.description, "public": item.public,
            "double_opt_in": item.double_opt_in, "active": item.active,
            "subscribed": item.subscriptions.filter(
                status=Subscription.Status.SUBSCRIBED).count()}


def subscription_out(item: Subscription) -> dict:
    return {"id": item.pk, "list_id": item.mailing_list_id, "contact_id": item.partner_id,
            "email": item.email, "status": item.status, "source": item.source,
            "consent_how": item.consent_how, "consent_at": item.consent_at,
            "consent_ip": item.consent_ip, "created_at": item.created_at,
            "unsubscribed_at": item.unsubscribed_at}


def _list(user, pk: int) -> MailingList:
    require_perm(user, MailingList, "view")
    item = MailingList.objects.for_user(user).filter(pk=pk).first()
    if item is None:
        raise ApiError(404, "No such mailing list.")
    return item


def _address(email: str) -> str:
    try:
        return services.email_snapshot(email)
    except InvalidAddress as exc:
        raise field_error("email", str(exc)) from None


@router.get("/lists", response={200: ListList, **ERRORS}, operation_id="lists_list",
            summary="Your companies' mailing lists")
def list_lists(request, filters: Query[Page]):
    user = actor(request)
    require_perm(user, MailingList, "view")
    return page(MailingList.objects.for_user(user), filters.limit, filters.offset, list_out)


@router.post("/lists", response={201: ListOut, **ERRORS}, operation_id="lists_create",
             summary="Create a mailing list in your current company")
def create_list(request, data: ListIn):
    user = actor(request)
    item = MailingList(company_id=company_for_create(user, data.company_id), name=data.name,
                       description=data.description, public=data.public,
                       double_opt_in=data.double_opt_in)
    services.save_list(item, actor=user)
    return 201, list_out(item)


@router.get("/lists/{id}", response={200: ListOut, **ERRORS}, operation_id="lists_get",
            summary="A mailing list")
def get_list(request, id: int = row_id()):
    return list_out(_list(actor(request), id))


@router.get("/lists/{id}/subscriptions", response={200: SubscriptionList, **ERRORS},
            operation_id="lists_subscriptions", summary="Who is on the list, with consent")
def list_subscriptions(request, filters: Query[SubscriptionFilters], id: int = row_id()):
    item = _list(actor(request), id)
    queryset = item.subscriptions.all()
    if filters.status:
        queryset = queryset.filter(status=filters.status)
    if filters.email:
        queryset = queryset.filter(email=filters.email.strip().lower())
    return page(queryset, filters.limit, filters.offset, subscription_out)


@router.post("/lists/{id}/subscribe", response={201: SubscriptionOut, 200: SubscriptionOut,
                                                **ERRORS},
             operation_id="lists_subscribe",
             summary="Subscribe an address (idempotent; double opt-in lists send the "
                     "confirmation mail)",
             description="201 when the subscription is new, 200 when the address was already "
                         "on the list (nothing changes). The contact is found by address or "
                         "created.")
def subscribe(request, data: SubscribeIn, id: int = row_id()):
    user = actor(request)
    item = _list(user, id)
    address = _address(data.email)
    known = item.subscriptions.filter(email=address).first()
    if known is not None and (known.status not in services.LEFT or not data.resubscribe):
        if known.status in services.LEFT:
            raise ApiError(409, f"{address} left this list ({known.get_status_display().lower()}"
                                "); send resubscribe: true only with their own new consent.")
        return 200, subscription_out(known)
    partner = find_or_create_partner(item.company, address, data.name, actor=user)
    subscription = services.subscribe(
        item, partner, actor=user, source=Subscription.Source.API,
        consent_how=data.consent_how, consent_ip=data.consent_ip,
        resubscribe=data.resubscribe)
    return 201, subscription_out(subscription)


@router.post("/lists/{id}/unsubscribe", response={200: SubscriptionOut, **ERRORS},
             operation_id="lists_unsubscribe",
             summary="Unsubscribe an address (idempotent)")
def unsubscribe(request, data: UnsubscribeIn, id: int = row_id()):
    user = actor(request)
    item = _list(user, id)
    known = item.subscriptions.filter(email=_address(data.email)).first()
    if known is None:
        raise field_error("email", "This address is not on the list.")
    return 200, subscription_out(services.unsubscribe(known, actor=user, reason=data.reason))


# --- campaigns ----------------------------------------------------------------------------

class CampaignOut(Schema):
    id: int
    company_id: int
    name: str
    subject: str
    preview_text: str
    email_from: str
    reply_to: str
    lang: str
    layout: str
    list_ids: list[int]
    exclude_list_ids: list[int]
    segment_ids: list[int]
    track_opens: bool
    track_clicks: bool
    ab_test: bool
    subject_b: str
    ab_sample: int
    ab_metric: str
    ab_hours: int
    ab_winner: str = Field(description="a or b once the A/B test is decided, else empty.")
    state: str = Field(description="draft, scheduled, preparing, sending, paused, cancelled, "
                                   "done or failed.")
    state_reason: str
    scheduled_at: datetime | None
    total: int = Field(description="Recipients after exclusions.")
    queued: int
    exclusions: dict[str, int] = Field(description="Addresses left out, by reason.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


CampaignList = list_schema("CampaignList", CampaignOut)


class CampaignIn(Schema):
    company_id: int | None = Field(None, description="On create; default: your current "
                                                     "company.")
    name: str = Field(max_length=200)
    subject: str = Field(max_length=998)
    preview_text: str = Field("", max_length=250)
    email_from: str = Field(max_length=320)
    reply_to: str = Field("", max_length=320)
    body_html: str = ""
    lang: str = Field("", max_length=16)
    layout: str = "branded"
    list_ids: list[int] = []
    exclude_list_ids: list[int] = []
    segment_ids: list[int] = Field([], description="Segments whose contacts join the lists'.")
    track_opens: bool = True
    track_clicks: bool = True
    ab_test: bool = Field(False, description="Test subject or body B on a sample first.")
    subject_b: str = Field("", max_length=998)
    body_html_b: str = ""
    ab_sample: int = Field(20, description="Percent of the audience in the test (2–90).")
    ab_metric: str = Field("opened", description="opened or clicked.")
    ab_hours: int = Field(4, description="Hours before the winner is chosen (1–168).")


class CampaignFilters(Page):
    state: str | None = None


class TestIn(Schema):
    addresses: list[str] = Field(min_length=1, max_length=campaign_services.MAX_TEST_ADDRESSES)


class ScheduleIn(Schema):
    at: datetime


class StatsOut(Schema):
    figures: dict[str, int]
    rates: dict[str, Decimal | float]


def campaign_out(item: Campaign) -> dict:
    return {"id": item.pk, "company_id": item.company_id, "name": item.name,
            "subject": item.subject, "preview_text": item.preview_text,
            "email_from": item.email_from, "reply_to": item.reply_to, "lang": item.lang,
            "layout": item.layout,
            "list_ids": sorted(item.lists.values_list("pk", flat=True)),
            "exclude_list_ids": sorted(item.exclude_lists.values_list("pk", flat=True)),
            "segment_ids": sorted(item.segments.values_list("pk", flat=True)),
            "track_opens": item.track_opens, "track_clicks": item.track_clicks,
            "ab_test": item.ab_test, "subject_b": item.subject_b, "ab_sample": item.ab_sample,
            "ab_metric": item.ab_metric, "ab_hours": item.ab_hours, "ab_winner": item.ab_winner,
            "state": item.state, "state_reason": item.state_reason,
            "scheduled_at": item.scheduled_at, "total": item.total, "queued": item.queued,
            "exclusions": item.exclusions or {}, "created_at": item.created_at,
            "started_at": item.started_at, "finished_at": item.finished_at}


def _campaign(user, pk: int) -> Campaign:
    require_perm(user, Campaign, "view")
    item = Campaign.objects.for_user(user).filter(pk=pk).first()
    if item is None:
        raise ApiError(404, "No such campaign.")
    return item


def _lists(user, ids: list[int], field: str) -> list[MailingList]:
    found = list(MailingList.objects.for_user(user).filter(pk__in=ids))
    if len(found) != len(set(ids)):
        raise field_error(field, "No such mailing list that you can see.")
    return found


def _write(user, item: Campaign, data: CampaignIn) -> Campaign:
    for name in ("name", "subject", "preview_text", "email_from", "reply_to", "body_html",
                 "lang", "layout", "track_opens", "track_clicks", "ab_test", "subject_b",
                 "body_html_b", "ab_sample", "ab_metric", "ab_hours"):
        setattr(item, name, getattr(data, name))
    if item.layout not in dict(Campaign._meta.get_field("layout").choices):
        raise field_error("layout", "Use branded, plain or none.")
    return campaign_services.save_campaign(
        item, actor=user, lists=_lists(user, data.list_ids, "list_ids"),
        exclude_lists=_lists(user, data.exclude_list_ids, "exclude_list_ids"),
        segments=segment_api.campaign_segments(user, item, data.segment_ids))


@router.get("/campaigns", response={200: CampaignList, **ERRORS},
            operation_id="campaigns_list", summary="Your companies' campaigns, newest first")
def list_campaigns(request, filters: Query[CampaignFilters]):
    user = actor(request)
    require_perm(user, Campaign, "view")
    queryset = Campaign.objects.for_user(user)
    if filters.state:
        queryset = queryset.filter(state=filters.state)
    return page(queryset, filters.limit, filters.offset, campaign_out)


@router.post("/campaigns", response={201: CampaignOut, **ERRORS},
             operation_id="campaigns_create", summary="Create a draft campaign")
def create_campaign(request, data: CampaignIn):
    user = actor(request)
    item = _write(user, Campaign(company_id=company_for_create(user, data.company_id)), data)
    return 201, campaign_out(item)


@router.get("/campaigns/{id}", response={200: CampaignOut, **ERRORS},
            operation_id="campaigns_get", summary="A campaign and its progress")
def get_campaign(request, id: int = row_id()):
    return campaign_out(_campaign(actor(request), id))


@router.put("/campaigns/{id}", response={200: CampaignOut, **ERRORS},
            operation_id="campaigns_update", summary="Change a draft or scheduled campaign")
def update_campaign(request, data: CampaignIn, id: int = row_id()):
    user = actor(request)
    return campaign_out(_write(user, _campaign(user, id), data))


@router.post("/campaigns/{id}/test", response={200: dict[str, int], **ERRORS},
             operation_id="campaigns_test",
             summary="Send the campaign to a few addresses, \"[Test]\" in the subject")
def test_campaign(request, data: TestIn, id: int = row_id()):
    user = actor(request)
    return {"queued": campaign_services.test_send(_campaign(user, id), data.addresses,
                                                  actor=user)}


def _act(request, id: int, action) -> dict:
    user = actor(request)
    return campaign_out(action(_campaign(user, id), actor=user))


@router.post("/campaigns/{id}/send", response={200: CampaignOut, **ERRORS},
             operation_id="campaigns_send", summary="Send now (the worker queues it)")
def send_campaign(request, id: int = row_id()):
    return _act(request, id, campaign_services.send_now)


@router.post("/campaigns/{id}/schedule", response={200: CampaignOut, **ERRORS},
             operation_id="campaigns_schedule", summary="Send at a time in the future")
def schedule_campaign(request, data: ScheduleIn, id: int = row_id()):
    user = actor(request)
    try:
        item = campaign_services.schedule(_campaign(user, id), data.at, actor=user)
    except ValidationError as exc:
        if "scheduled_at" in getattr(exc, "message_dict", {}):
            raise field_error("at", exc.message_dict["scheduled_at"][0]) from None
        raise
    return campaign_out(item)


@router.post("/campaigns/{id}/pause", response={200: CampaignOut, **ERRORS},
             operation_id="campaigns_pause", summary="Hold what is not sent yet")
def pause_campaign(request, id: int = row_id()):
    return _act(request, id, campaign_services.pause)


@router.post("/campaigns/{id}/resume", response={200: CampaignOut, **ERRORS},
             operation_id="campaigns_resume", summary="Go on sending a paused campaign")
def resume_campaign(request, id: int = row_id()):
    return _act(request, id, campaign_services.resume)


@router.post("/campaigns/{id}/cancel", response={200: CampaignOut, **ERRORS},
             operation_id="campaigns_cancel", summary="Stop for good")
def cancel_campaign(request, id: int = row_id()):
    return _act(request, id, campaign_services.cancel)


@router.get("/campaigns/{id}/stats", response={200: StatsOut, **ERRORS},
            operation_id="campaigns_stats",
            summary="Targeted, excluded, sent, delivered, opened, clicked, replied, bounced, "
                    "unsubscribed, complained — with rates")
def campaign_stats(request, id: int = row_id()):
    figures = stats.summary(_campaign(actor(request), id))
    rates = figures.pop("rates", {})
    return {"figures": {k: int(v) for k, v in figures.items()}, "rates": rates}
