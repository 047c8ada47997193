"""Settings screens: companies, users and roles, API keys, scheduled jobs, the audit log."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from unfold.admin import ModelAdmin
from unfold.forms import AdminPasswordChangeForm, UserChangeForm, UserCreationForm

from mailroom.core import navigation, services
from mailroom.core.admin_actions import apply_each
from mailroom.core.cron import validate_schedule
from mailroom.core.models import ApiKey, AuditLog, Company, CronJob, CronRun, LockedLogin, User
from mailroom.core.roles import Role

admin.site.unregister(Group)
admin.site.site_header = admin.site.site_title = "Mailroom"
admin.site.index_title = "Home"


class ReadOnlyAdmin(ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Company)
class CompanyAdmin(ModelAdmin):
    list_display = ("name", "email", "language", "timezone", "currency")
    search_fields = ("name", "email")
    fieldsets = (
        (None, {"fields": ("name", "logo", "primary_color", "secondary_color")}),
        ("Contact", {"fields": ("email", "phone", "website")}),
        ("Postal address", {"fields": ("street", "street2", "zip", "city", "state", "country")}),
        ("Locale", {"fields": ("language", "timezone", "currency")}),
    )

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(pk__in=request.user.company_ids())

    def has_add_permission(self, request):
        return request.user.has_role(Role.ADMINISTRATOR)

    def has_change_permission(self, request, obj=None):
        return request.user.has_role(Role.ADMINISTRATOR)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.save_company(obj, actor=request.user)


class MailroomUserCreationForm(UserCreationForm):
    class Meta(UserCreationForm.Meta):
        model = User


class MailroomUserChangeForm(UserChangeForm):
    roles = forms.MultipleChoiceField(
        choices=[(r.value, r.value) for r in Role], required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Administrators hold every role. Mail Managers run servers, aliases and the "
                  "email hub; Template Editors use the full template language.",
    )

    class Meta(UserChangeForm.Meta):
        model = User

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["roles"].initial = sorted(self.instance.role_names())


@admin.register(User)
class UserAdmin(BaseUserAdmin, ModelAdmin):
    form = MailroomUserChangeForm
    add_form = MailroomUserCreationForm
    change_password_form = AdminPasswordChangeForm
    list_display = ("username", "get_full_name", "email", "current_company", "roles_display",
                    "is_active")
    list_filter = ("is_active", "groups", "companies")
    filter_horizontal = ("companies",)
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Person", {"fields": ("first_name", "last_name", "email", "language", "timezone")}),
        ("Access", {"fields": ("is_active", "roles", "companies", "current_company")}),
    )

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(companies__in=request.user.company_ids()).distinct()

    def _is_admin(self, request):
        return request.user.has_role(Role.ADMINISTRATOR)

    def has_add_permission(self, request):
        return self._is_admin(request)

    def has_change_permission(self, request, obj=None):
        # a user who also belongs to a company the actor does not administer is read-only
        return self._is_admin(request) and (
            obj is None or services.may_manage_user(request.user, obj))

    def has_delete_permission(self, request, obj=None):
        return False

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "companies" and not request.user.is_superuser:
            kwargs["queryset"] = Company.objects.filter(pk__in=request.user.company_ids())
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def _refuse_unless_manager(self, request, object_id, action: str) -> None:
        """Audit and refuse a write on a user the actor may only look at — before the admin
        opens its transaction, so the audit row of the refusal is kept."""
        target = self.get_object(request, unquote(object_id)) if object_id else None
        if target is not None and self._is_admin(request):
            services.require_user_manager(request.user, target, action)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        if request.method == "POST":
            self._refuse_unless_manager(request, object_id, "user.update")
        elif object_id and self._is_admin(request):
            target = self.get_object(request, unquote(object_id))
            if target is not None and not services.may_manage_user(request.user, target):
                messages.info(request, f"{target} also belongs to a company you do not "
                                       "administer, so only an administrator of all their "
                                       "companies can change them.")
        return super().changeform_view(request, object_id, form_url, extra_context)

    @admin.display(description="roles")
    def roles(self, obj) -> str:  # shown where the form's roles field is read-only
        return obj.roles_display

    def user_change_password(self, request, id, form_url=""):
        if request.method == "POST":
            self._refuse_unless_manager(request, id, "user.password")
        user = self.get_object(request, unquote(id))
        if request.method != "POST" or user is None or not self.has_change_permission(
                request, user):
            return super().user_change_password(request, id, form_url)
        form = self.change_password_form(user, request.POST)
        usable = form.is_valid() and form.cleaned_data["set_usable_password"]
        if not form.is_valid() or not (usable or "unset-password" in request.POST):
            return super().user_change_password(request, id, form_url)  # shows the errors
        services.set_password(user, form.cleaned_data["password1"] if usable else None,
                              actor=request.user)
        update_session_auth_hash(request, user)
        messages.success(request, "Password changed successfully." if usable
                         else "Password-based authentication was disabled.")
        return HttpResponseRedirect(reverse("admin:core_user_change", args=(user.pk,)))

    def save_model(self, request, obj, form, change):
        if not change:  # the add form has no roles; the new user joins the actor's company
            company = request.user.current_company_id
            services.save_user(obj, actor=request.user, roles=[Role.USER],
                               companies=[company] if company else [])

    def save_related(self, request, form, formsets, change):
        if not change:
            return
        obj = form.instance
        companies = form.cleaned_data.get("companies")
        roles = form.cleaned_data.get("roles")
        services.save_user(obj, actor=request.user, companies=companies, roles=roles)


@admin.register(ApiKey)
class ApiKeyAdmin(ModelAdmin):
    list_display = ("prefix", "name", "user", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "user", "created_at", "last_used_at", "revoked_at")
    fields = ("name", "user", "prefix", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke"]

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("user")
        if request.user.is_superuser:
            return qs
        if request.user.has_role(Role.ADMINISTRATOR):
            # keys of users the actor fully administers, and their own
            return qs.filter(Q(user__in=services.manageable_users(request.user))
                             | Q(user=request.user))
        return qs.filter(user=request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke selected keys")
    def revoke(self, request, queryset):
        apply_each(self, request, queryset, services.revoke_api_key, "Revoked keys")


class CronJobForm(forms.ModelForm):
    class Meta:
        model = CronJob
        fields = "__all__"

    def clean_schedule(self):
        schedule = self.cleaned_data["schedule"].strip()
        try:
            validate_schedule(schedule)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return schedule


@admin.register(LockedLogin)
class LockedLoginAdmin(ReadOnlyAdmin):
    """Failed sign-ins (django-axes) and who is locked out; Unlock lifts a lockout early."""

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time",
                    "locked")
    search_fields = ("username", "ip_address")
    fields = ("username", "ip_address", "user_agent", "path_info", "failures_since_start",
              "attempt_time")
    actions = ["unlock"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        names = services.manageable_users(request.user).values("username")
        return qs.filter(username__in=names)

    def has_view_permission(self, request, obj=None):
        return request.user.is_authenticated and request.user.has_role(Role.ADMINISTRATOR)

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    @admin.display(boolean=True, description="locked now")
    def locked(self, obj) -> bool:
        return (obj.failures_since_start >= settings.AXES_FAILURE_LIMIT
                and obj.attempt_time + settings.AXES_COOLOFF_TIME > timezone.now())

    @admin.action(description="Unlock selected sign-ins")
    def unlock(self, request, queryset):
        apply_each(self, request, queryset, services.unlock_login, "Unlocked sign-ins")


@admin.register(CronJob)
class CronJobAdmin(ModelAdmin):
    form = CronJobForm
    list_display = ("name", "task", "schedule", "enabled", "next_run_at", "last_run_at",
                    "last_ok", "run_count")
    list_filter = ("enabled", "last_ok")
    readonly_fields = ("task", "last_run_at", "last_duration_ms", "last_result", "last_ok",
                       "run_count")
    fields = ("name", "task", "schedule", "enabled", "next_run_at", "last_run_at",
              "last_duration_ms", "last_ok", "last_result", "run_count")

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        services.save_cron_job(obj, actor=request.user)


@admin.register(CronRun)
class CronRunAdmin(ReadOnlyAdmin):
    list_display = ("job", "scheduled_for", "started_at", "finished_at", "worker", "ok")
    list_filter = ("ok", "job")


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "actor_name", "action", "object_repr", "company")
    list_filter = ("action",)
    search_fields = ("action", "object_repr", "actor_name")
    readonly_fields = ("created_at", "actor_name", "company", "action", "object_type",
                       "object_id", "object_repr", "before", "after")

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(company__in=request.user.company_ids())


navigation.add_model("Settings", "Companies", "apartment", Company)
navigation.add_model("Settings", "Users", "group", User)
navigation.add("Settings", "API keys", "key", "admin:core_apikey_changelist")
navigation.add("Settings", "Locked logins", "lock_person", "admin:core_lockedlogin_changelist",
               check=lambda request: request.user.is_authenticated
               and request.user.has_role(Role.ADMINISTRATOR))
navigation.add_model("Settings", "Scheduled jobs", "schedule", CronJob)
navigation.add_model("Settings", "Audit log", "history", AuditLog)
