"""Postal providers' configuration: the default print room, save (credentials write-only),
Test connection and Resume. One transaction each, an explicit actor, an audit row each."""

from __future__ import annotations

from django.db import transaction

from mailroom.core.access import require
from mailroom.core.services import audit, snapshot
from mailroom.letters.models import PostalProvider, window_for_country
from mailroom.letters.providers import ProviderError, provider_for

PROVIDER_FIELDS = ["name", "kind", "active", "settings", "window_standard"]


def default_provider(company, *, actor=None, create: bool = True) -> PostalProvider:
    """The company's first active provider; the local print room is made on first use (on
    the first letter sent; `create=False`, for a preview, gives it unsaved: a page view
    writes nothing)."""
    provider = (PostalProvider.objects.filter(company=company, active=True)
                .order_by("id").first())
    if provider is not None:
        return provider
    if not create:
        return PostalProvider(company=company, name="Print room", kind=PostalProvider.Kind.LOCAL,
                              window_standard=window_for_country(str(company.country or "")))
    with transaction.atomic():
        provider, created = PostalProvider.objects.get_or_create(
            company=company, name="Print room",
            defaults={"kind": PostalProvider.Kind.LOCAL,
                      "window_standard": window_for_country(str(company.country or ""))})
        if created:
            audit("letters.provider.create", actor=actor, obj=provider,
                  after=snapshot(provider, PROVIDER_FIELDS))
    return provider


def save_provider(provider: PostalProvider, *, actor, keep_credentials: bool = True
                  ) -> PostalProvider:
    """Create or change a provider (Mail Managers). A blank credentials field keeps the
    stored ones; the audit row never holds them."""
    require(actor, "letters.change_postalprovider" if provider.pk
            else "letters.add_postalprovider", provider)
    provider.full_clean()
    with transaction.atomic():
        before = {}
        if provider.pk:
            previous = PostalProvider.objects.select_for_update().get(pk=provider.pk)
            before = snapshot(previous, PROVIDER_FIELDS)
            if keep_credentials and not provider.credentials:
                provider.credentials = previous.credentials
        provider.save()
        audit("letters.provider.change" if before else "letters.provider.create", actor=actor,
              obj=provider, before=before, after=snapshot(provider, PROVIDER_FIELDS))
    return provider


def test_provider(provider: PostalProvider, *, actor) -> tuple[bool, str]:
    """Test connection: (works, what the provider said, in plain words). Audited."""
    require(actor, "letters.change_postalprovider", provider)
    try:
        ok, message = True, provider_for(provider).test_connection()
    except ProviderError as exc:
        ok, message = False, f"{exc.message} {exc.action}".strip()
    audit("letters.provider.test", actor=actor, obj=provider, after={"ok": ok})
    return ok, message


def resume_provider(provider: PostalProvider, *, actor) -> PostalProvider:
    """Lift a pause now (credit was topped up)."""
    require(actor, "letters.change_postalprovider", provider)
    with transaction.atomic():
        PostalProvider.objects.filter(pk=provider.pk).update(paused_until=None, paused_reason="")
        audit("letters.provider.resume", actor=actor, obj=provider,
              before={"paused_reason": provider.paused_reason}, after={"paused_reason": ""})
    provider.refresh_from_db()
    return provider
