"""Company isolation, in one place: every company-owned queryset answers `for_user`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db import models

if TYPE_CHECKING:
    from mailroom.core.models import User


class CompanyQuerySet(models.QuerySet):
    """Rows a user may see: those of the companies the user belongs to.

    Superusers (the operator created with `createsuperuser`) see every company.
    """

    company_field = "company"

    def for_user(self, user: User) -> CompanyQuerySet:
        if not getattr(user, "is_authenticated", False) or not user.is_active:
            return self.none()
        if user.is_superuser:
            return self
        return self.filter(**{f"{self.company_field}__in": user.company_ids()})

    def for_current_company(self, user: User) -> CompanyQuerySet:
        """What list screens show: only the user's current company."""
        company_id = getattr(user, "current_company_id", None)
        if company_id is None:
            return self.for_user(user)
        return self.for_user(user).filter(**{f"{self.company_field}_id": company_id})


class CompanyOwned(models.Model):
    """Abstract base for every row that belongs to one company."""

    company = models.ForeignKey("core.Company", on_delete=models.PROTECT, related_name="+")

    objects = CompanyQuerySet.as_manager()

    class Meta:
        abstract = True
