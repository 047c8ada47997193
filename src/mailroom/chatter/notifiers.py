"""Who delivers a posted message's notifications: a registry the chatter calls.

The chatter decides *who* is notified (followers, mentioned users, the internal followers of a
record that received mail) and writes one `Notification` per person. It cannot send mail
itself — the outbox is floors above it — so an upper app registers a notifier in its
`AppConfig.ready()` (templating registers the follower email) and the chatter calls every
notifier inside `post_message`'s transaction: the message, its notifications and the mails
they cause commit or roll back together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

# (message, notifications, record, actor) -> None
Notifier = Callable[..., None]
_NOTIFIERS: dict[str, Notifier] = {}


def register_notifier(name: str, notifier: Notifier) -> None:
    if _NOTIFIERS.get(name, notifier) is not notifier:
        raise ValueError(f"Notifier {name!r} is registered twice.")
    _NOTIFIERS[name] = notifier


def run_notifiers(message, notifications: Sequence, record, actor) -> None:
    for notifier in _NOTIFIERS.values():
        notifier(message, notifications, record, actor)


# (user, company, create: bool) -> Partner | None: the contact that stands for an office
# user in a company. Contacts registers it (contacts.services.partner_for_user): the chatter
# sits below contacts and reaches contacts' rows only through its own foreign keys.
_user_partner: list[Callable[..., object]] = []


def register_user_partner(resolver: Callable[..., object]) -> None:
    _user_partner[:] = [resolver]


def partner_of_user(user, company, *, create: bool = False):
    if not _user_partner or user is None or not getattr(user, "pk", None):
        return None
    return _user_partner[0](user, company, create=create)
