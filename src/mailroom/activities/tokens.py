"""The signed one-click link in an approval email.

The token names the activity and its assignee, signed with Django's signing (SECRET_KEY,
its own salt) and timestamped: it opens the confirmation page for `APPROVAL_LINK_DAYS`.
It never acts by itself — only the POST of that page approves or refuses — and it is spent
once the activity is decided (the service refuses anything but a planned activity) or
reassigned (the assignee in the token no longer matches).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core import signing

SALT = "mailroom.activities.approval-link"
APPROVAL_LINK_DAYS = 14


class LinkError(Exception):
    """A link that cannot be used; the message is what the page says."""


@dataclass(frozen=True)
class ApprovalLink:
    activity_id: int
    assignee_id: int


def make_token(activity) -> str:
    return signing.dumps({"a": activity.pk, "u": activity.assignee_id}, salt=SALT,
                         compress=False)


def read_token(token: str, max_age: timedelta | None = None) -> ApprovalLink:
    try:
        data = signing.loads(token, salt=SALT,
                             max_age=max_age or timedelta(days=APPROVAL_LINK_DAYS))
    except signing.SignatureExpired:
        raise LinkError(f"This link has expired (links work for {APPROVAL_LINK_DAYS} days). "
                        "Open the record in Mailroom to approve or refuse.") from None
    except signing.BadSignature:
        raise LinkError("This link is not valid: it may have been cut or changed. "
                        "Open the record in Mailroom to approve or refuse.") from None
    try:
        return ApprovalLink(activity_id=int(data["a"]), assignee_id=int(data["u"]))
    except (KeyError, TypeError, ValueError):
        raise LinkError("This link is not valid.") from None
