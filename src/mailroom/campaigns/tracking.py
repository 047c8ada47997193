"""Open and click tracking: the body's links turned into tracked ones, the open pixel, and
the services that record what a recipient did (the pixel and redirect views only call them).

`instrument(campaign, source, *, opens, clicks)` is called by the engine once per language
and variant on the finished HTML (a Jinja source: the per-recipient parts are still
placeholders). It returns the source with each trackable `<a href>` turned into
`{{ click_base }}/<CampaignLink id>` and, when `opens`, the open pixel `{{ open_url }}` added;
the engine passes `click_base` and `open_url` (links.py) in each recipient's context.
Trackable: an absolute http(s) URL with no template placeholder in it (the unsubscribe and
preference links carry `{{ … }}` and stay as they are; mailto:, tel: and #anchors too). The
document is parsed by the standard library's HTML parser, which reports each start tag's
exact text and place, so only the href values change and every other byte stays as written
(comments, scripts and styles are never touched).

Machine opens (`is_machine_open`). A pixel fetch is flagged `machine` — shown apart, never
counted as a person's open — when:
- the User-Agent is exactly `Mozilla/5.0`: Apple Mail Privacy Protection fetches every image
  of every mail on delivery through Apple's proxies with that bare string, which no browser or
  mail client sends. The client IP is not used: MPP leaves through Apple's relay partners as
  well as 17.0.0.0/8, and 17.0.0.0/8 is also where Apple's own staff read their mail;
- it names a known security scanner or link checker (SCANNER_AGENTS);
- it arrives within SCANNER_SECONDS of the mail being sent (mail.sent_at): nobody reads that
  fast, gateways scanning inbound mail do.
Gmail's and Yahoo's image proxies (GoogleImageProxy, YahooMailProxy) are NOT machine: they
fetch when the person opens the mail. An empty User-Agent is not flagged either (unknown is
not proof). A person's open after a machine open counts: the trace becomes a human open.

What is recorded (repeats are not, so a refetching image cache cannot fill the table): the
first machine open and the first human open per recipient (`opened` events, `machine` set on
the former); every click (a `clicked` event with the URL, and the link's counter); the first
click sets `clicked_at` and, when no person opened yet, counts as the human open. A HEAD on a
tracked link (link checkers) is redirected without being recorded.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

from django.db import IntegrityError, transaction
from django.db.models import F, OuterRef, Q, Subquery
from django.utils import timezone

from mailroom.campaigns.campaign_models import CampaignEvent, CampaignLink, CampaignRecipient

Kind = CampaignEvent.Kind
SCANNER_SECONDS = 2
APPLE_PROXY_AGENT = "Mozilla/5.0"
# security gateways and link checkers that fetch what a mail links to before anyone reads it
SCANNER_AGENTS = re.compile(
    r"barracuda|mimecast|proofpoint|symantec|messagelabs|trendmicro|forcepoint|"
    r"fireeye|ironport|sophos|zscaler|bitdefender|safelinks|linkchecker|"
    r"python-requests|python-urllib|go-http-client|curl/|wget/|libwww-perl|"
    r"headlesschrome|phantomjs|\bbot\b|crawler|spider", re.IGNORECASE)
PIXEL = ('<img src="{{ open_url }}" width="1" height="1" alt="" '
         'style="display:block;border:0">')
MAX_URL = CampaignLink._meta.get_field("url").max_length
DETAIL = CampaignEvent._meta.get_field("detail").max_length
# one attribute of a start tag's raw text: name, then an optional value (quoted or not)
_ATTRIBUTE = re.compile(r"""([^\s"'>/=]+)(?:(\s*=\s*)("[^"]*"|'[^']*'|[^\s"'=<>`]+))?""")
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


# --- instrumenting the body ---------------------------------------------------------------

def trackable(url: str) -> bool:
    """An absolute http(s) URL the redirect may stand for: not a placeholder, mail or phone
    link, anchor or relative path, and short enough to keep."""
    url = (url or "").strip()
    return (url.lower().startswith(("http://", "https://")) and "{{" not in url
            and "{%" not in url and len(url) <= MAX_URL)


class _Links(HTMLParser):
    """Each `<a>` start tag with an href: (offset in the source, raw tag text, href value)."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str, str]] = []
        # the parser counts lines by "\n" only (not str.splitlines' other breaks)
        self._line_starts = [0] + [m.end() for m in re.finditer("\n", source)]

    def handle_starttag(self, tag, attrs):
        if tag != "a":
            return
        href = next((value for name, value in attrs if name == "href"), None)
        if href is None:
            return
        line, column = self.getpos()
        self.found.append((self._line_starts[line - 1] + column, self.get_starttag_text(),
                           href))

    handle_startendtag = handle_starttag


def _with_href(tag: str, href: str) -> str:
    """The raw start tag with its (first) href value replaced, every other byte kept."""
    for match in _ATTRIBUTE.finditer(tag, 2):  # after "<a"
        if match.group(1).lower() == "href" and match.group(3) is not None:
            return f'{tag[:match.start(3)]}"{href}"{tag[match.end(3):]}'
    return tag


def link_ids(campaign, urls) -> dict[str, int]:
    """{url: CampaignLink id}, created when missing. Safe when two workers instrument the
    same campaign at once: a create that loses the race reads the winner's row."""
    urls = set(urls)
    ids = dict(CampaignLink.objects.filter(campaign=campaign, url__in=urls)
               .values_list("url", "id"))
    for url in sorted(urls - ids.keys()):
        try:
            with transaction.atomic():
                ids[url] = CampaignLink.objects.create(campaign=campaign, url=url).pk
        except IntegrityError:
            ids[url] = CampaignLink.objects.get(campaign=campaign, url=url).pk
    return ids


def instrument(campaign, source: str, *, opens: bool, clicks: bool) -> str:
    """The source with its trackable links tracked (`clicks`) and the pixel added (`opens`);
    idempotent: instrumenting the result again changes nothing."""
    if clicks:
        parser = _Links(source)
        parser.feed(source)
        parser.close()
        tracked = [(offset, tag, href.strip()) for offset, tag, href in parser.found
                   if trackable(href) and source.startswith(tag, offset)]
        ids = link_ids(campaign, {href for _, _, href in tracked})
        for offset, tag, href in reversed(tracked):
            new = _with_href(tag, "{{ click_base }}/" + str(ids[href]))
            source = source[:offset] + new + source[offset + len(tag):]
    if opens and "{{ open_url }}" not in source:
        ends = list(_BODY_END.finditer(source))
        at = ends[-1].start() if ends else len(source)
        source = source[:at] + PIXEL + source[at:]
    return source


# --- recording opens and clicks -------------------------------------------------------------

def is_machine_open(user_agent: str, sent_at, now) -> bool:
    """Whether a pixel fetch is a proxy or scanner rather than a person (see the module)."""
    agent = (user_agent or "").strip()
    if agent == APPLE_PROXY_AGENT or SCANNER_AGENTS.search(agent):
        return True
    return sent_at is not None and now - sent_at < timedelta(seconds=SCANNER_SECONDS)


def _trace(company_id: int, recipient_id: int, **extra):
    """The recipient's trace fields the services need, in one query; None if the token's
    company does not own it (or it was deleted)."""
    return (CampaignRecipient.objects
            .filter(pk=recipient_id, campaign__company_id=company_id)
            .annotate(sent_at=F("mail__sent_at"), **extra)
            .values("id", "campaign_id", "opened_at", "machine_open", "clicked_at", "sent_at",
                    *extra)
            .first())


def record_open(company_id: int, recipient_id: int, *, user_agent: str = "",
                actor=None) -> str | None:
    """A fetch of the open pixel (actor None: the recipient). Returns what was recorded:
    "human", "machine", or None (already recorded, or not our recipient)."""
    trace = _trace(company_id, recipient_id)
    if trace is None:
        return None
    now = timezone.now()
    machine = is_machine_open(user_agent, trace["sent_at"], now)
    if machine:
        if trace["opened_at"] is not None:
            return None
        still = Q(opened_at__isnull=True)
    else:
        if trace["opened_at"] is not None and not trace["machine_open"]:
            return None
        still = Q(opened_at__isnull=True) | Q(machine_open=True)
    with transaction.atomic():
        # conditional: of two fetches at once, only one finds the trace still unopened
        if not CampaignRecipient.objects.filter(still, pk=recipient_id).update(
                opened_at=now, machine_open=machine):
            return None
        CampaignEvent.objects.create(campaign_id=trace["campaign_id"],
                                     recipient_id=recipient_id, kind=Kind.OPENED, at=now,
                                     machine=machine)
    return "machine" if machine else "human"


def record_click(company_id: int, recipient_id: int, number: int, *, actor=None,
                 record: bool = True) -> str | None:
    """A click on tracked link `number` (actor None: the recipient). Returns the URL to
    redirect to — only ever a link of the recipient's own campaign — or None (not ours).
    `record=False` (a HEAD from a link checker) only looks the link up."""
    trace = _trace(company_id, recipient_id, url=Subquery(
        CampaignLink.objects.filter(pk=number, campaign=OuterRef("campaign"))
        .values("url")[:1]))
    if trace is None or trace["url"] is None:
        return None
    url = trace["url"]
    if not record:
        return url
    now = timezone.now()
    event = dict(campaign_id=trace["campaign_id"], recipient_id=recipient_id, at=now)
    with transaction.atomic():
        CampaignLink.objects.filter(pk=number).update(clicks=F("clicks") + 1)
        events = [CampaignEvent(kind=Kind.CLICKED, detail=url[:DETAIL], **event)]
        if trace["clicked_at"] is None:
            first = CampaignRecipient.objects.filter(pk=recipient_id,
                                                     clicked_at__isnull=True)
            human = trace["opened_at"] is not None and not trace["machine_open"]
            if first.update(clicked_at=now) and not human:
                # a click proves a person opened the mail
                unopened = Q(opened_at__isnull=True) | Q(machine_open=True)
                if CampaignRecipient.objects.filter(unopened, pk=recipient_id).update(
                        opened_at=now, machine_open=False):
                    events.insert(0, CampaignEvent(kind=Kind.OPENED, **event))
        CampaignEvent.objects.bulk_create(events)
    return url
