"""What happens to a record when its mail is delivered: hooks named on the mail.

A quotation is marked sent when its mail is *sent*, not when it is queued. The mail carries
the hook's name (`OutgoingMail.on_sent`); settle runs it in the transaction that records the
delivery, so the two are never apart: a worker killed in between redoes both.

Send checks (`register_send_check`) are the other way round: asked by the sender before a
claimed mail is built, they may cancel it (its recipient unsubscribed since it was queued) or
hold it back a while (its campaign is paused).
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


# --- send checks: a last word on a claimed mail before it is built -----------------------------
#
# A check takes the mails of a claimed batch and answers for the few it has something to say
# about: {mail id: ("cancel", reason)} — the mail is not sent, it ends cancelled with that
# reason — or {mail id: ("defer", reason)}: it waits SEND_CHECK_DEFER, not counted as an
# attempt. A campaign registers one (an unsubscribe between queueing and sending stops the
# mail). One or two queries per batch, never per mail: the check runs on every batch.

SendCheck = Callable[[list], dict[int, tuple[str, str]]]
_SEND_CHECKS: list[SendCheck] = []
SEND_CHECK_ACTIONS = ("cancel", "defer")


def register_send_check(check: SendCheck) -> None:
    """Called from an AppConfig.ready(); idempotent."""
    if check not in _SEND_CHECKS:
        _SEND_CHECKS.append(check)


def run_send_checks(mails: list) -> dict[int, tuple[str, str]]:
    """Every check's verdicts for `mails`; a cancel wins over a defer. A check that raises
    is logged and ignored: a broken check never keeps mail from being sent."""
    verdicts: dict[int, tuple[str, str]] = {}
    if not mails or not _SEND_CHECKS:
        return verdicts
    ids = {mail.pk for mail in mails}
    for check in list(_SEND_CHECKS):
        try:
            with transaction.atomic():  # a failed query must not poison the caller's transaction
                answer = check(mails) or {}
        except Exception:
            log.exception("send check %s failed; the batch is sent without it",
                          getattr(check, "__qualname__", check))
            continue
        for mail_id, verdict in answer.items():
            if (mail_id not in ids or not isinstance(verdict, tuple) or len(verdict) != 2
                    or verdict[0] not in SEND_CHECK_ACTIONS):
                log.error("send check %s gave a bad verdict %r for mail %s",
                          getattr(check, "__qualname__", check), verdict, mail_id)
                continue
            if verdicts.get(mail_id, ("",))[0] != "cancel":
                verdicts[mail_id] = (verdict[0], str(verdict[1]))
    return verdicts


# --- report hooks: what other apps do when a bounce or a spam complaint comes back ---------
#
# record_bounce and record_complaint (services.py) run them in their transaction, each in a
# savepoint: a campaign marks its trace, suppresses the address and may pause itself. One
# failing hook is logged and never keeps the report itself from being recorded.
#   bounce hook:    hook(mail, recipient, hard=bool, reason=str)
#   complaint hook: hook(mail, recipient, feedback_type=str)

ReportHook = Callable[..., None]
_REPORT_HOOKS: dict[str, list[ReportHook]] = {"bounce": [], "complaint": []}


def register_bounce_hook(hook: ReportHook) -> None:
    """Called from an AppConfig.ready(); idempotent."""
    if hook not in _REPORT_HOOKS["bounce"]:
        _REPORT_HOOKS["bounce"].append(hook)


def register_complaint_hook(hook: ReportHook) -> None:
    """Called from an AppConfig.ready(); idempotent."""
    if hook not in _REPORT_HOOKS["complaint"]:
        _REPORT_HOOKS["complaint"].append(hook)


def run_report_hooks(kind: str, mail, recipient, **details) -> None:
    for hook in list(_REPORT_HOOKS[kind]):
        try:
            with transaction.atomic():
                hook(mail, recipient, **details)
        except Exception:
            log.exception("%s hook %s failed for mail %s", kind,
                          getattr(hook, "__qualname__", hook), mail.pk)
