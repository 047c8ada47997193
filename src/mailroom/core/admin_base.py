"""Admin bases: company scoping for every Mailroom screen.

Records with a chatter use `chatter.admin_base.RecordAdmin`, built on these."""

from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.forms.fields import InvalidJSONInput
from django.http import Http404
from unfold.admin import ModelAdmin

from mailroom.core.models import Company, User
from mailroom.core.roles import Role
from mailroom.core.scoping import CompanyQuerySet


class SafeJSONFormField(forms.JSONField):
    """Django's JSON form field lets a ValueError other than JSONDecodeError escape (a number
    of 5000 digits exceeds Python's int limit): a red line, not a 500."""

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValueError:
            raise ValidationError(self.error_messages["invalid"], code="invalid",
                                  params={"value": str(value)[:50]}) from None

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except ValueError:
            return InvalidJSONInput(data)


class CompanyScopedAdmin(ModelAdmin):
    """Lists show the current company; forms and lookups are limited to the user's companies."""

    list_fullwidth = False
    warn_unsaved_form = True
    formfield_overrides = {
        **ModelAdmin.formfield_overrides,
        models.JSONField: {**ModelAdmin.formfield_overrides.get(models.JSONField, {}),
                           "form_class": SafeJSONFormField},
    }

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if not isinstance(qs, CompanyQuerySet):
            return qs
        match = getattr(request, "resolver_match", None)
        if match and match.url_name and match.url_name.endswith("_changelist"):
            return qs.for_current_company(request.user)
        return qs.for_user(request.user)

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        """Another company's row (or a missing one) is a 404, never a redirect that hints."""
        raise Http404(f"No {opts.verbose_name} with that ID.")

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if request.user.current_company_id:
            initial.setdefault("company", request.user.current_company_id)
        return initial

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        user = request.user
        if related is Company:
            kwargs["queryset"] = (
                Company.objects.all() if user.is_superuser
                else Company.objects.filter(pk__in=user.company_ids())
            )
        elif related is User:
            kwargs["queryset"] = User.objects.filter(
                is_active=True, companies__in=user.company_ids()
            ).distinct() if not user.is_superuser else User.objects.filter(is_active=True)
        elif isinstance(related._default_manager.all(), CompanyQuerySet):
            kwargs["queryset"] = related._default_manager.for_user(user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        related = db_field.remote_field.model
        if isinstance(related._default_manager.all(), CompanyQuerySet):
            kwargs["queryset"] = related._default_manager.for_user(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def has_delete_permission(self, request, obj=None):
        return request.user.has_role(Role.ADMINISTRATOR) and super().has_delete_permission(
            request, obj
        )
