"""Double opt-in: the mail that asks a new subscriber to confirm, and the confirmation.

The mail is queued in the transaction that makes the "unconfirmed" subscription (durable
together, never one without the other), in the contact's language, from the company's
notification sender. The link opens a page with a button: the confirmation is a POST, so a
mail scanner that follows every link confirms nobody. Confirming records when and from which
address, beside the evidence of the sign-up.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone, translation
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.utils.translation import to_language

from mailroom.campaigns import links, tokens
from mailroom.campaigns.models import Subscription
from mailroom.lib.formatting import normalize_locale
from mailroom.outgoing import services as outbox
from mailroom.outgoing.models import OutgoingMail
from mailroom.templating import layout
from mailroom.templating.follower_mail import sender_address

Status = Subscription.Status


def queue_confirmation(subscription: Subscription) -> OutgoingMail | None:
    """Queue the confirmation mail (in the caller's transaction). None when the company has
    no sender address yet: the subscription then waits, unconfirmed, and says so nowhere
    else — the list's page shows the unconfirmed count."""
    company = subscription.company
    sender = sender_address(company)
    if not sender:
        return None
    mailing_list = subscription.mailing_list
    lang = normalize_locale(subscription.partner.language, fallback="en_US")
    url = links.confirm_url(company.pk, subscription.pk)
    with translation.override(to_language(lang)):
        subject = _("Please confirm your subscription to %(list)s") % {
            "list": mailing_list.name}
        body = (
            f"<p>{escape(_('Hello,'))}</p>"
            f"<p>{escape(_('Someone, hopefully you, asked to receive “%(list)s” from %(company)s at this address.') % {'list': mailing_list.name, 'company': company.name})}</p>"  # noqa: E501
            f'<p><a href="{escape(url)}" style="display:inline-block;padding:10px 18px;'
            f'border-radius:6px;background:{escape(company.primary_color or "#1f6feb")};'
            f'color:#ffffff;text-decoration:none;font-weight:600">'
            f"{escape(_('Yes, subscribe me'))}</a></p>"
            f"<p>{escape(_('If you did not ask for it, ignore this mail: you will receive nothing more.'))}</p>"  # noqa: E501
        )
        wrapped = layout.wrap(body, company=company, subject=subject, lang=lang,
                              layout="branded")
    html, text = layout.finish(wrapped)
    return outbox.enqueue(company=company, email_from=sender, to=[subscription.email],
                          subject=subject, html=html, text=text,
                          priority=OutgoingMail.Priority.HIGH, is_automatic=True,
                          idempotency_key=f"campaigns:confirm:{subscription.pk}:"
                                          f"{int(subscription.consent_at.timestamp())}")


def read_link(token: str) -> Subscription | None:
    found = tokens.read(tokens.CONFIRM, token)
    if found is None:
        return None
    company_id, subscription_id = found
    return (Subscription.objects.select_related("mailing_list", "company", "partner")
            .filter(pk=subscription_id, company_id=company_id).first())


def confirm(subscription: Subscription, *, ip: str | None) -> Subscription:
    """The person confirmed by their link (actor: themselves). Idempotent; someone who left
    the list since is not brought back by an old link."""
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().get(pk=subscription.pk)
        if subscription.status != Status.UNCONFIRMED:
            return subscription
        now = timezone.now()
        subscription.status = Status.SUBSCRIBED
        subscription.confirmed_at = subscription.updated_at = now
        where = f" from {ip}" if ip else ""
        subscription.consent_how = (f"{subscription.consent_how} · confirmed by the link in "
                                    f"the confirmation mail{where}")[-500:]
        subscription.save(update_fields=["status", "confirmed_at", "updated_at",
                                         "consent_how"])
    return subscription
