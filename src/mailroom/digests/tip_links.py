"""The signed links a tip carries in an email: a click redirect per link of its body, and the
"Was this useful? Yes / No" pair.

Tokens are made with Django's signing (SECRET_KEY, one salt per kind) and timestamped. A click
token holds the tip, the user and the target URL, so the redirect goes only to the URL that
was signed (no open redirect: change one character of the URL and the signature fails). A
vote token holds the tip and the user; the answer travels beside it (a query parameter on the
GET, the button on the POST), so one token serves both answers and a changed mind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode, urljoin, urlsplit

from django.conf import settings
from django.core import signing
from django.urls import reverse

CLICK_SALT = "mailroom.digests.tip-click"
VOTE_SALT = "mailroom.digests.tip-vote"
# a tip is read in an old digest now and then: links work for a year
MAX_AGE = timedelta(days=365)
ANSWERS = ("yes", "no")


class LinkError(Exception):
    """A link that cannot be used; the message is what the page says."""


@dataclass(frozen=True)
class ClickLink:
    tip_id: int
    user_id: int
    url: str


@dataclass(frozen=True)
class VoteLink:
    tip_id: int
    user_id: int


def absolute(url: str) -> str:
    """A link of a tip's body made absolute against BASE_URL ("/outgoing/mailserver/")."""
    return urljoin(settings.BASE_URL.rstrip("/") + "/", url.strip())


def redirectable(url: str) -> bool:
    """Only web links are wrapped in a click redirect (mailto: and anchors stay as written)."""
    parts = urlsplit(url)
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def _site(path: str) -> str:
    return settings.BASE_URL.rstrip("/") + path


def click_token(tip, user, url: str) -> str:
    return signing.dumps({"t": tip.pk, "u": user.pk, "l": url}, salt=CLICK_SALT,
                         compress=True)


def click_url(tip, user, url: str) -> str:
    return _site(reverse("digests:tip_click", args=[click_token(tip, user, url)]))


def vote_token(tip, user) -> str:
    return signing.dumps({"t": tip.pk, "u": user.pk}, salt=VOTE_SALT, compress=False)


def links(tip, user) -> dict[str, str]:
    """The absolute "Yes" and "No" links of "Was this useful?" for `user`."""
    base = _site(reverse("digests:tip_vote", args=[vote_token(tip, user)]))
    return {answer: f"{base}?{urlencode({'answer': answer})}" for answer in ANSWERS}


def _load(token: str, salt: str) -> dict:
    try:
        data = signing.loads(token, salt=salt, max_age=MAX_AGE)
    except signing.SignatureExpired:
        raise LinkError("This link has expired: tip links work for a year.") from None
    except signing.BadSignature:
        raise LinkError("This link is not valid: it may have been cut or changed.") from None
    if not isinstance(data, dict):
        raise LinkError("This link is not valid.")
    return data


def read_click(token: str) -> ClickLink:
    data = _load(token, CLICK_SALT)
    try:
        link = ClickLink(tip_id=int(data["t"]), user_id=int(data["u"]), url=str(data["l"]))
    except (KeyError, TypeError, ValueError):
        raise LinkError("This link is not valid.") from None
    if not redirectable(link.url):
        raise LinkError("This link is not valid.")
    return link


def read_vote(token: str) -> VoteLink:
    data = _load(token, VOTE_SALT)
    try:
        return VoteLink(tip_id=int(data["t"]), user_id=int(data["u"]))
    except (KeyError, TypeError, ValueError):
        raise LinkError("This link is not valid.") from None
