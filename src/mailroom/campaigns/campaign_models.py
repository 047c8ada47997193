"""Campaigns: one bulk mail to an audience, each recipient traced from queueing to click.

- Segment: a dynamic audience built from conditions (segments.py), resolved at send time.
- Campaign: what is sent (subject, preview text, body in a layout, translations), from whom,
  to which lists minus which lists, and where it stands. The worker resolves the audience
  into CampaignRecipient rows, then renders and queues them in batches; `queued` against
  `total` is the progress bar. `exclusions` counts every address left out, by reason.
  A thread: replies to its mails land in its chatter (replies.py).
- CampaignTranslation: subject, preview text and body in another language; a recipient gets
  their contact's language when the campaign has it, the campaign's own texts otherwise.
- CampaignRecipient (the trace): one address of the audience, deduplicated (one row per
  address and campaign, enforced by the database), with its outbox mail once queued and the
  first open, click, reply and unsubscribe. Excluded addresses keep a row saying why, so a
  user can see who was left out; duplicates are only counted.
- CampaignEvent: what happened to a recipient (sent, delivered, opened, clicked, bounced,
  complained, unsubscribed, replied), one table, in order — what later webhooks read.
- CampaignLink: a link of the body, numbered for the click redirect.
- Suppression: an address the company must not mail in bulk again (unsubscribed from all,
  hard-bounced, complained, or added by hand or import), with the reason and when.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from mailroom.chatter.models import MailThread
from mailroom.core.scoping import CompanyOwned, CompanyQuerySet


class Layout(models.TextChoices):  # templating's layouts (templates/templating/layouts/)
    BRANDED = "branded", "Branded: logo, colours and footer"
    PLAIN = "plain", "Plain: a simple readable frame"
    NONE = "none", "None: the body exactly as written"


class Segment(CompanyOwned):
    """A dynamic audience: the contacts matching `rules` when a campaign is sent (never a
    stored list). `rules` is built in the UI: [{"field": "country", "op": "is", "value":
    "BE"}, …] combined by `match` (all / any); segments.py reads and counts them."""

    class Match(models.TextChoices):
        ALL = "all", "All conditions"
        ANY = "any", "Any condition"

    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    match = models.CharField(max_length=3, choices=Match.choices, default=Match.ALL)
    rules = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(fields=["company", "name"],
                                               name="campaigns_segment_unique_name")]

    def __str__(self) -> str:
        return self.name


class Campaign(MailThread, CompanyOwned):
    class State(models.TextChoices):
        DRAFT = "draft", "Draft"
        SCHEDULED = "scheduled", "Scheduled"
        PREPARING = "preparing", "Preparing"  # the worker resolves, renders and queues
        SENDING = "sending", "Sending"  # all queued: the outbox is sending
        PAUSED = "paused", "Paused"
        CANCELLED = "cancelled", "Cancelled"
        DONE = "done", "Sent"
        FAILED = "failed", "Failed"

    name = models.CharField(max_length=200, help_text="For you; recipients never see it.")
    subject = models.CharField(max_length=998)
    preview_text = models.CharField(
        max_length=250, blank=True,
        help_text="Shown after the subject in most inboxes; hidden in the mail itself.")
    email_from = models.CharField("from", max_length=320)
    reply_to = models.CharField("reply-to", max_length=320, blank=True,
                                help_text="Blank: replies come back to this campaign.")
    body_html = models.TextField("body", blank=True)
    layout = models.CharField(max_length=20, choices=Layout.choices, default=Layout.BRANDED)
    lang = models.CharField("language", max_length=16, blank=True,
                            help_text="The language the texts above are written in; blank: "
                                      "the company's.")
    lists = models.ManyToManyField("campaigns.MailingList", related_name="campaigns",
                                   blank=True, verbose_name="send to lists")
    exclude_lists = models.ManyToManyField("campaigns.MailingList", related_name="+",
                                           blank=True, verbose_name="except people on")
    segments = models.ManyToManyField(Segment, related_name="campaigns", blank=True,
                                      verbose_name="send to segments")
    server = models.ForeignKey("outgoing.MailServer", on_delete=models.SET_NULL, null=True,
                               blank=True, related_name="+",
                               help_text="Blank: any server set for bulk mail.")
    track_opens = models.BooleanField(default=True)
    track_clicks = models.BooleanField(default=True)
    # A/B test: a sample gets A or B (half each); after `ab_hours` the variant with the
    # better rate on `ab_metric` goes to everyone else (engine/ab.py)
    ab_test = models.BooleanField("A/B test", default=False)
    subject_b = models.CharField("subject B", max_length=998, blank=True,
                                 help_text="Blank: the same subject as A.")
    body_html_b = models.TextField("body B", blank=True, help_text="Blank: the same body as A.")
    ab_sample = models.PositiveSmallIntegerField(
        "test on this share of the audience (%)", default=20,
        help_text="Half of the sample gets A, half B; the others wait for the winner.")
    ab_metric = models.CharField("choose the winner by", max_length=7, default="opened",
                                 choices=[("opened", "Open rate"), ("clicked", "Click rate")])
    ab_hours = models.PositiveSmallIntegerField("after this many hours", default=4)
    ab_winner = models.CharField(max_length=1, blank=True)
    ab_decided_at = models.DateTimeField(null=True, blank=True)
    ab_figures = models.JSONField(default=dict, blank=True)
    # the reputation guard: pause when, after `guard_after` sends, the rates pass these
    bounce_limit = models.DecimalField(
        "pause above hard-bounce rate (%)", max_digits=5, decimal_places=2, default=Decimal("5"),
        help_text="Share of sent mails that bounced hard; receivers distrust senders above 5%.")
    complaint_limit = models.DecimalField(
        "pause above complaint rate (%)", max_digits=5, decimal_places=2, default=Decimal("0.3"),
        help_text="Gmail and Yahoo ask bulk senders to stay under 0.3% spam complaints.")
    guard_after = models.PositiveIntegerField(
        "check after this many sends", default=200,
        help_text="Rates over fewer mails say little; the guard watches from here on.")
    deliverability_override = models.CharField(
        max_length=500, blank=True,
        help_text="Why the campaign was sent although its domain failed the deliverability "
                  "check (who and why; audited).")
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    state_reason = models.CharField(max_length=500, blank=True)
    scheduled_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0, help_text="Recipients after exclusions.")
    queued = models.PositiveIntegerField(default=0, help_text="Recipients queued so far.")
    audience_done = models.BooleanField(default=False)
    exclusions = models.JSONField(default=dict, blank=True)  # {"duplicate": 3, "bounced": 1}
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["state", "lease_expires_at"])]

    def __str__(self) -> str:
        return self.name

    @property
    def percent(self) -> int:
        if not self.total:
            return 100 if self.audience_done and self.state != self.State.PREPARING else 0
        return min(100, self.queued * 100 // self.total)

    @property
    def excluded(self) -> int:
        return sum(self.exclusions.values())

    @property
    def editable(self) -> bool:
        return self.state in (self.State.DRAFT, self.State.SCHEDULED)


class CampaignTranslation(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE,
                                 related_name="translations")
    lang = models.CharField("language", max_length=16)
    subject = models.CharField(max_length=998)
    preview_text = models.CharField(max_length=250, blank=True)
    body_html = models.TextField("body", blank=True)

    class Meta:
        ordering = ["lang"]
        constraints = [models.UniqueConstraint(fields=["campaign", "lang"],
                                               name="campaigns_one_translation")]

    def __str__(self) -> str:
        return f"{self.campaign} ({self.lang})"


class CampaignLink(models.Model):
    """A link of the campaign's body, tracked: the click redirect goes only to these URLs
    (never to one the request names: no open redirect). Its id is the number in the tracked
    link; one row per URL and campaign, shared by the languages and variants."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="links")
    url = models.CharField(max_length=2000)
    clicks = models.PositiveIntegerField(default=0, help_text="Every click, people's repeats "
                                                              "included.")

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["campaign", "url"],
                                               name="campaigns_link_once")]

    def __str__(self) -> str:
        return self.url


class Exclusion(models.TextChoices):
    DUPLICATE = "duplicate", "Listed twice"
    INVALID = "invalid", "Invalid address"
    SUPPRESSED = "suppressed", "On the suppression list"
    BLACKLISTED = "blacklisted", "Contact blacklisted"
    UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
    BOUNCED = "bounced", "Bounced before"
    COMPLAINED = "complained", "Complained before"
    EXCLUDED_LIST = "excluded_list", "On an excluded list"


class CampaignRecipient(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be queued"
        EXCLUDED = "excluded", "Excluded"
        QUEUED = "queued", "Queued"
        SENT = "sent", "Sent"
        BOUNCED = "bounced", "Bounced"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Not sent"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="recipients")
    partner = models.ForeignKey("contacts.Partner", on_delete=models.SET_NULL, null=True,
                                blank=True, related_name="+", verbose_name="contact")
    subscription = models.ForeignKey("campaigns.Subscription", on_delete=models.SET_NULL,
                                     null=True, blank=True, related_name="+")
    email = models.CharField(max_length=254)
    name = models.CharField(max_length=200, blank=True)
    lang = models.CharField("language", max_length=16, blank=True)
    variant = models.CharField(max_length=1, default="a")
    status = models.CharField(max_length=9, choices=Status.choices, default=Status.PENDING)
    exclusion = models.CharField(max_length=13, choices=Exclusion.choices, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    mail = models.ForeignKey("outgoing.OutgoingMail", on_delete=models.SET_NULL, null=True,
                             blank=True, related_name="+")
    message_id = models.CharField(max_length=255, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    machine_open = models.BooleanField(default=False)
    clicked_at = models.DateTimeField(null=True, blank=True)
    replied_at = models.DateTimeField(null=True, blank=True)
    unsubscribed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["id"]
        verbose_name = "campaign recipient"
        indexes = [models.Index(fields=["campaign", "status"])]
        constraints = [models.UniqueConstraint(fields=["campaign", "email"],
                                               name="campaigns_one_trace_per_address")]

    def __str__(self) -> str:
        return f"{self.email} in {self.campaign}"


class CampaignEvent(models.Model):
    class Kind(models.TextChoices):
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        BOUNCED = "bounced", "Bounced"
        COMPLAINED = "complained", "Complained"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        REPLIED = "replied", "Replied"

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="events")
    recipient = models.ForeignKey(CampaignRecipient, on_delete=models.CASCADE,
                                  related_name="events")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    at = models.DateTimeField(default=timezone.now)
    detail = models.CharField(max_length=500, blank=True)  # the link, the bounce reason
    machine = models.BooleanField(default=False, help_text="A privacy proxy or scanner, not "
                                                           "a person.")

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["campaign", "kind", "at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.recipient.email}"


class Suppression(CompanyOwned):
    class Reason(models.TextChoices):
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed from all"
        BOUNCED = "bounced", "Hard bounce"
        COMPLAINED = "complained", "Complaint (marked as spam)"
        MANUAL = "manual", "Added by hand"
        IMPORT = "import", "Imported"

    email = models.CharField(max_length=254, help_text="Normalised, lower-case.")
    reason = models.CharField(max_length=12, choices=Reason.choices)
    note = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL,
                                   null=True, blank=True, related_name="+")

    objects = CompanyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "suppressed address"
        verbose_name_plural = "suppression list"
        constraints = [models.UniqueConstraint(fields=["company", "email"],
                                               name="campaigns_suppressed_once")]

    def __str__(self) -> str:
        return self.email
