"""The signed links in a digest email: unsubscribe (RFC 8058 one-click too) and "send it
daily again" after a slow-down.

A token names one digest and one recipient, signed with Django's signing (SECRET_KEY, a salt
per purpose, so an unsubscribe token never restores a periodicity and the reverse). Tokens do
not expire: an unsubscribe link must work in a digest found months later (RFC 8058 asks
that it keep working). The links change what the token names and nothing else: that digest
for that user. Views only read tokens and call the digests services.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.urls import reverse

from mailroom.core.models import User
from mailroom.digests import services
from mailroom.digests.models import Digest, DigestSubscription

UNSUBSCRIBE_SALT = "mailroom.digests.unsubscribe"
RESTORE_SALT = "mailroom.digests.restore-periodicity"


class LinkError(Exception):
    """A link that cannot be used; the message is what the page says."""


@dataclass(frozen=True)
class Link:
    digest: Digest
    user: User


def _dumps(digest, user, salt: str) -> str:
    return signing.dumps({"d": digest.pk, "u": user.pk}, salt=salt, compress=False)


def unsubscribe_token(digest, user) -> str:
    return _dumps(digest, user, UNSUBSCRIBE_SALT)


def restore_token(digest, user) -> str:
    return _dumps(digest, user, RESTORE_SALT)


def _absolute(path: str) -> str:
    return settings.BASE_URL.rstrip("/") + path


def unsubscribe_url(digest, user) -> str:
    return _absolute(reverse("digests:unsubscribe", args=[unsubscribe_token(digest, user)]))


def restore_url(digest, user) -> str:
    return _absolute(reverse("digests:restore", args=[restore_token(digest, user)]))


def _read(token: str, salt: str) -> Link:
    try:
        data = signing.loads(token, salt=salt)
        digest_id, user_id = int(data["d"]), int(data["u"])
    except signing.BadSignature:
        raise LinkError("This link is not valid: it may have been cut or changed. Copy the "
                        "whole link from the email, or change your digests in your "
                        "preferences in Mailroom.") from None
    except (KeyError, TypeError, ValueError):
        raise LinkError("This link is not valid.") from None
    digest = Digest.objects.select_related("company").filter(pk=digest_id).first()
    user = User.objects.filter(pk=user_id).first()
    if digest is None or user is None:
        raise LinkError("This link no longer works: the digest or the account it was sent "
                        "to has been deleted.")
    return Link(digest=digest, user=user)


def read_unsubscribe(token: str) -> Link:
    return _read(token, UNSUBSCRIBE_SALT)


def read_restore(token: str) -> Link:
    return _read(token, RESTORE_SALT)


def is_subscribed(link: Link) -> bool:
    return DigestSubscription.objects.filter(digest=link.digest, user=link.user,
                                             subscribed=True).exists()


def unsubscribe(link: Link) -> DigestSubscription:
    return services.set_subscribed(link.digest, link.user, False, actor=None,
                                   source=DigestSubscription.Source.UNSUBSCRIBE_LINK)


def resubscribe(link: Link) -> DigestSubscription:
    return services.set_subscribed(link.digest, link.user, True, actor=None,
                                   source=DigestSubscription.Source.SELF)


def restore(link: Link) -> Digest:
    """Back to the periodicity people chose, asked by a recipient who still gets it."""
    if not (link.user.is_active and link.digest.company_id in link.user.company_ids()):
        raise LinkError("This link no longer works: your account no longer receives this "
                        "digest.")
    return services.restore_periodicity(link.digest, actor=None, user=link.user)
