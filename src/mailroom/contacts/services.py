from django.conf import settings
from django.db import transaction
from django.db.models import F

from mailroom.chatter.services import save_record
from mailroom.contacts.models import Partner
from mailroom.lib.addresses import normalize_email


def save_partner(partner: Partner, *, actor) -> Partner:
    """Create or update a contact; the address is normalized by `Partner.clean`."""
    return save_record(partner, actor=actor)


def find_or_create_partner(company, email: str, name: str = "", *, actor=None) -> Partner:
    """The contact for `email` in `company`, created if missing (used by inbound mail)."""
    email = normalize_email(email)
    partner = Partner.objects.filter(company=company, email__iexact=email).first()
    if partner is None:
        partner = save_partner(
            Partner(company=company, email=email, name=name or email.split("@")[0]), actor=actor
        )
    return partner


def count_bounce(*, company_id: int, address: str, hard: bool, bounces: int,
                 actor=None) -> bool:
    """Mail to `address` bounced once more: raise the bounce count of its contacts in the
    company and blacklist them once `bounces` — hard bounces ever, or soft ones in the last 30
    days, as counted by the caller including this one — reaches MAILROOM_HARD_BOUNCE_BLACKLIST
    (default 2) or MAILROOM_SOFT_BOUNCE_BLACKLIST (default 5). True when this blacklisted
    someone. One transaction; `actor` None: the router, not a person."""
    if hard:
        limit = int(getattr(settings, "MAILROOM_HARD_BOUNCE_BLACKLIST", 2))
    else:
        limit = int(getattr(settings, "MAILROOM_SOFT_BOUNCE_BLACKLIST", 5))
    partners = Partner.objects.filter(company_id=company_id, email__iexact=address)
    with transaction.atomic():
        partners.update(bounce_count=F("bounce_count") + 1)
        if bounces >= limit:
            return partners.filter(is_blacklisted=False).update(is_blacklisted=True) > 0
    return False
