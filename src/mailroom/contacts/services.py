from django.conf import settings
from django.db import transaction
from django.db.models import F

from mailroom.chatter.services import save_record
from mailroom.contacts.models import Partner
from mailroom.lib.addresses import InvalidAddress, normalize_email


def save_partner(partner: Partner, *, actor, trusted: tuple[str, ...] = (),
                 log_creation: bool = True) -> Partner:
    """Create or update a contact; the address is normalized by `Partner.clean`.
    `trusted`, `log_creation`: as chatter.services.save_record."""
    return save_record(partner, actor=actor, trusted=trusted, log_creation=log_creation)


def find_or_create_partner(company, email: str, name: str = "", *, actor=None) -> Partner:
    """The contact for `email` in `company`, created if missing (used by inbound mail)."""
    email = normalize_email(email)
    partner = Partner.objects.filter(company=company, email__iexact=email).first()
    if partner is None:
        partner = save_partner(
            Partner(company=company, email=email, name=name or email.split("@")[0]), actor=actor
        )
    return partner


def partner_for_user(user, company, *, create: bool = True) -> Partner | None:
    """The contact that stands for office user `user` in `company` (followers and
    notifications are contacts). Made on first need from the user's name and address; a
    contact that already has the user's address and stands for nobody is adopted instead."""
    partner = Partner.objects.filter(company=company, user=user).first()
    if partner is not None or not create:
        return partner
    if company.pk not in user.company_ids() and not user.is_superuser:
        return None
    with transaction.atomic():
        try:  # an address no contact may have (a reserved domain): the user is told in-app
            email = normalize_email(user.email) if user.email else ""
        except InvalidAddress:
            email = ""
        adopt = (Partner.objects.select_for_update()
                 .filter(company=company, user__isnull=True, email__iexact=email)
                 .order_by("pk").first()) if email else None
        if adopt is not None:
            Partner.objects.filter(pk=adopt.pk).update(user=user)
            adopt.user = user
            return adopt
        return save_partner(Partner(company=company, user=user, email=email,
                                    name=user.get_full_name() or user.get_username(),
                                    language=user.language, timezone=user.timezone),
                            actor=None)


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
