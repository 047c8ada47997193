"""What happens to a record when its mail is delivered: hooks named on the mail.

A quotation is marked sent when its mail is *sent*, not when it is queued. The mail carries
the hook's name (`OutgoingMail.on_sent`); settle runs it in the transaction that records the
delivery, so the two are never apart: a worker killed in between redoes both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

log = logging.getLogger("mailroom.sender")

DeliveryHook = Callable[["OutgoingMail"], None]  # noqa: F821 - the model, imported lazily
_HOOKS: dict[str, DeliveryHook] = {}


def register_delivery_hook(name: str, hook: DeliveryHook) -> None:
    if _HOOKS.get(name, hook) is not hook:
        raise ValueError(f"Delivery hook {name!r} is registered twice.")
    _HOOKS[name] = hook


def known_hooks() -> set[str]:
    return set(_HOOKS)


def run_delivery_hooks(mails) -> None:
    """Run each delivered mail's hook in its own savepoint: one failing hook is logged and
    never keeps the delivery itself from being recorded."""
    for mail in mails:
        hook = _HOOKS.get(mail.on_sent)
        if hook is None:
            log.error("mail %s names an unknown delivery hook %r", mail.pk, mail.on_sent)
            continue
        try:
            with transaction.atomic():
                hook(mail)
        except Exception:
            log.exception("delivery hook %s failed for mail %s", mail.on_sent, mail.pk)
