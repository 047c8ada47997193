from mailroom.chatter.services import save_record
from mailroom.contacts.models import Partner


def save_partner(partner: Partner, *, actor) -> Partner:
    """Create or update a contact; the address is normalized by `Partner.clean`."""
    return save_record(partner, actor=actor)


def find_or_create_partner(company, email: str, name: str = "", *, actor=None) -> Partner:
    """The contact for `email` in `company`, created if missing (used by inbound mail)."""
    from mailroom.lib.addresses import normalize_email

    email = normalize_email(email)
    partner = Partner.objects.filter(company=company, email__iexact=email).first()
    if partner is None:
        partner = save_partner(
            Partner(company=company, email=email, name=name or email.split("@")[0]), actor=actor
        )
    return partner
