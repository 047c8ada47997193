"""Core services: the only writers of companies, users' company choice, audit rows and API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import models, transaction
from django.utils import timezone

from mailroom.core.cron import validate_schedule
from mailroom.core.models import ApiKey, AuditLog, Company, CronJob, User
from mailroom.core.roles import Role
from mailroom.core.secrets import EncryptedTextField

API_KEY_PREFIX = "mr_"


def snapshot(instance: models.Model, fields: list[str] | None = None) -> dict[str, Any]:
    """A JSON-safe summary of a row for audit before/after columns; secrets are masked."""
    data: dict[str, Any] = {}
    for field in instance._meta.concrete_fields:
        if fields is not None and field.name not in fields:
            continue
        if field.name in {"password"}:
            continue
        value = getattr(instance, field.attname)
        if isinstance(field, EncryptedTextField):
            value = "********" if value else ""
        elif value is not None and not isinstance(value, (str, int, float, bool)):
            value = str(value)
        data[field.name] = value
    return data


def audit(
    action: str,
    *,
    actor: User | None,
    obj: models.Model | None = None,
    company: Company | None = None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditLog:
    """Write one audit row. Only changed keys are kept so the log reads as a diff."""
    before = before or {}
    after = after or {}
    if before and after:
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        before = {k: v for k, v in before.items() if k in changed}
        after = {k: v for k, v in after.items() if k in changed}
    if company is None and obj is not None:
        company = obj if isinstance(obj, Company) else getattr(obj, "company", None)
    return AuditLog.objects.create(
        actor=actor if actor and actor.pk else None,
        actor_name=(actor.get_username() if actor and actor.pk else "system"),
        company=company,
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        before=before,
        after=after,
    )


def save_company(company: Company, *, actor: User | None) -> Company:
    """Create or update a company (Administrators only), with an audit row."""
    if actor is not None and not actor.has_role(Role.ADMINISTRATOR):
        raise PermissionDenied("Only administrators can change companies.")
    company.full_clean()
    with transaction.atomic():
        before = {}
        if company.pk:
            before = snapshot(Company.objects.get(pk=company.pk))
        company.save()
        audit(
            "company.update" if before else "company.create",
            actor=actor,
            obj=company,
            before=before,
            after=snapshot(company),
        )
        if not before and actor is not None and not actor.is_superuser:
            actor.companies.add(company)
            actor.forget_companies()
    return company


def may_manage_user(actor: User | None, target: User) -> bool:
    """Whether `actor` may change `target` (password, email, companies, roles, keys, active).

    Only someone who administers *every* company the target belongs to may: otherwise an
    Administrator of one shared company could reset the password of a user of two companies
    and read the other one as them. A superuser is changed only by superusers; the system
    (actor None: CLI, migrations) and a user acting on themselves for their own keys are
    handled by the callers.
    """
    if actor is None or actor.is_superuser:
        return True
    if not actor.is_active or not actor.has_role(Role.ADMINISTRATOR):
        return False
    if target.is_superuser:
        return False
    if target.pk is None:
        return True
    stored = set(target.companies.values_list("id", flat=True))
    return stored <= set(actor.company_ids())


def manageable_users(actor: User) -> models.QuerySet[User]:
    """The users `actor` may change, as a queryset (the set form of `may_manage_user`)."""
    if actor.is_superuser:
        return User.objects.all()
    if not actor.is_active or not actor.has_role(Role.ADMINISTRATOR):
        return User.objects.none()
    ids = actor.company_ids()
    return (User.objects.filter(companies__in=ids, is_superuser=False)
            .exclude(companies__in=Company.objects.exclude(pk__in=ids)).distinct())


def require_user_manager(actor: User | None, target: User, action: str) -> None:
    """Raise PermissionDenied (after an audit row that survives the refusal) unless
    `actor` may change `target`."""
    if may_manage_user(actor, target):
        return
    refuse(action, actor=actor, obj=target,
           reason="The user belongs to a company you do not administer.")


def refuse(action: str, *, actor: User | None, obj: models.Model, reason: str) -> None:
    """Audit a refused attempt in its own transaction, then raise PermissionDenied."""
    company = getattr(actor, "current_company", None)
    with transaction.atomic():
        audit(f"{action}.refused", actor=actor, obj=obj, company=company,
              after={"reason": reason})
    raise PermissionDenied(reason)


PREFERENCE_FIELDS = ("first_name", "last_name", "language", "timezone", "notify_by")


def save_preferences(user: User, *, actor: User, **values) -> User:
    """A user's own preferences (name, language, time zone, how they are notified): only
    they change them here; administrators use the user form. Audited like any user change."""
    if actor is None or actor.pk != user.pk:
        raise PermissionDenied("You can only change your own preferences.")
    unknown = set(values) - set(PREFERENCE_FIELDS)
    if unknown:
        raise ValidationError(f"Not a preference: {', '.join(sorted(unknown))}.")
    before = {name: getattr(user, name) for name in values}
    for name, value in values.items():
        setattr(user, name, value)
    user.full_clean(exclude=[f.name for f in user._meta.fields if f.name not in values])
    with transaction.atomic():
        user.save(update_fields=list(values))
        changed = {k: v for k, v in values.items() if before[k] != v}
        if changed:
            audit("user.preferences", actor=actor, obj=user, before={k: before[k]
                                                                     for k in changed},
                  after=changed)
    return user


def save_user(user: User, *, actor: User | None, companies=None, roles=None) -> User:
    """Create or update a user with companies and roles (Administrators only), audited.

    The actor must administer every company the user belongs to now and every company the
    user is given (see `may_manage_user`)."""
    if actor is not None and not actor.has_role(Role.ADMINISTRATOR):
        raise PermissionDenied("Only administrators can manage users.")
    if user.pk:
        require_user_manager(actor, user, "user.update")
    if companies is not None and actor is not None and not actor.is_superuser:
        wanted = {c if isinstance(c, int) else c.pk for c in companies}
        foreign = wanted - set(actor.company_ids())
        if foreign:
            refuse("user.update" if user.pk else "user.create", actor=actor, obj=user,
                   reason="You can only give a user companies you administer.")
    with transaction.atomic():
        before = snapshot(User.objects.get(pk=user.pk), _USER_AUDIT) if user.pk else {}
        if before:
            before["companies"] = sorted(user.company_ids())
            before["roles"] = sorted(user.role_names())
        user.is_staff = True
        user.save()
        if companies is not None:
            user.companies.set(companies)
            user.forget_companies()
        if roles is not None:
            from django.contrib.auth.models import Group

            user.groups.set(Group.objects.filter(name__in=[Role(r).value for r in roles]))
            user._role_names = None
        ids = user.company_ids()
        if user.current_company_id not in ids:
            user.current_company_id = ids[0] if ids else None
            user.save(update_fields=["current_company"])
        after = snapshot(user, _USER_AUDIT)
        after["companies"] = sorted(ids)
        after["roles"] = sorted(user.role_names())
        audit("user.update" if before else "user.create", actor=actor, obj=user,
              company=user.current_company, before=before, after=after)
    return user


def set_password(user: User, raw_password: str | None, *, actor: User | None) -> User:
    """Set (or, with None, disable) a user's password, audited; only for a full manager."""
    if actor is not None and actor.pk != user.pk:
        if not actor.has_role(Role.ADMINISTRATOR):
            raise PermissionDenied("Only administrators can set other users' passwords.")
        require_user_manager(actor, user, "user.password")
    with transaction.atomic():
        if raw_password is None:
            user.set_unusable_password()
        else:
            user.set_password(raw_password)
        user.save(update_fields=["password"])
        audit("user.password", actor=actor, obj=user, company=user.current_company,
              after={"usable": raw_password is not None})
    return user


_USER_AUDIT = ["username", "first_name", "last_name", "email", "is_active", "is_superuser",
               "current_company", "language", "timezone"]


def unlock_login(attempt, *, actor: User | None) -> int:
    """Lift a login lockout (django-axes): the account's failures and its address's, audited.

    Only for someone who may change that user (an unknown username or an address alone:
    superusers only). Returns how many failure rows were cleared."""
    from axes.models import AccessAttempt

    target = User.objects.filter(username=attempt.username).first()
    if actor is not None and not actor.is_superuser:
        if target is None:
            refuse("login.unlock", actor=actor, obj=attempt,
                   reason="Only a superuser can unlock addresses and unknown usernames.")
        require_user_manager(actor, target, "login.unlock")
    with transaction.atomic():
        rows = AccessAttempt.objects.filter(
            models.Q(username=attempt.username) | models.Q(ip_address=attempt.ip_address))
        cleared, _ = rows.delete()
        audit("login.unlock", actor=actor, obj=target or attempt,
              company=target.current_company if target else None,
              after={"username": attempt.username or "", "ip_address": attempt.ip_address or ""})
    return cleared


# Test connection reaches any host and port an admin types: counted per user (from the audit
# rows each run writes, so the count holds across processes and machines) so it cannot be used
# to scan a network. Apps register the audit action their tests write.
CONNECTION_TEST_ACTIONS: set[str] = set()


def connection_test_action(action: str) -> str:
    CONNECTION_TEST_ACTIONS.add(action)
    return action


def require_connection_test_budget(actor: User | None, obj: models.Model) -> None:
    """Refuse (audited) a connection test past MAILROOM_CONNECTION_TEST_LIMIT runs in
    MAILROOM_CONNECTION_TEST_MINUTES by this user; the system (actor None) is not limited."""
    if actor is None:
        return
    minutes = settings.MAILROOM_CONNECTION_TEST_MINUTES
    since = timezone.now() - timedelta(minutes=minutes)
    used = AuditLog.objects.filter(actor=actor, action__in=CONNECTION_TEST_ACTIONS,
                                   created_at__gte=since).count()
    if used >= settings.MAILROOM_CONNECTION_TEST_LIMIT:
        refuse("connection_test", actor=actor, obj=obj,
               reason=f"You ran {used} connection tests in the last {minutes} minutes, the "
                      f"most allowed; try again in a few minutes.")


def save_cron_job(job, *, actor: User | None):
    """Change a job's schedule or enabled flag (Mail Managers and Administrators), audited."""
    if actor is not None and not actor.has_role(Role.MAIL_MANAGER):
        raise PermissionDenied("Only Mail Managers can change scheduled jobs.")
    try:
        validate_schedule(job.schedule)
    except ValueError as exc:
        raise ValidationError({"schedule": str(exc)}) from exc
    with transaction.atomic():
        before = snapshot(CronJob.objects.get(pk=job.pk))
        job.save()
        audit("cronjob.update", actor=actor, obj=job, before=before, after=snapshot(job))
    return job


def switch_company(user: User, company_id: int) -> Company:
    """Make `company_id` the user's current company; only a company the user belongs to."""
    if not user.is_superuser and company_id not in user.company_ids():
        raise ValidationError("You do not belong to that company.")
    company = Company.objects.get(pk=company_id)
    User.objects.filter(pk=user.pk).update(current_company=company)
    user.current_company = company
    return company


def create_api_key(user: User, *, actor: User | None, name: str = "") -> tuple[ApiKey, str]:
    """Create a key and return it with its secret, which is shown this once and never again."""
    if actor is not None and actor.pk != user.pk:
        if not actor.has_role(Role.ADMINISTRATOR):
            raise PermissionDenied("Only administrators can create keys for other users.")
        require_user_manager(actor, user, "apikey.create")
    prefix = secrets.token_hex(4)
    secret = f"{API_KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = ApiKey.objects.create(user=user, name=name, prefix=prefix, key_hash=hash_key(secret))
        audit("apikey.create", actor=actor, obj=key, company=user.current_company,
              after={"user": user.username, "name": name, "prefix": prefix})
    return key, secret


def revoke_api_key(key: ApiKey, *, actor: User | None) -> ApiKey:
    if actor is not None and actor.pk != key.user_id:
        if not actor.has_role(Role.ADMINISTRATOR):
            raise PermissionDenied("Only administrators can revoke other users' keys.")
        require_user_manager(actor, key.user, "apikey.revoke")
    with transaction.atomic():
        if key.revoked_at is None:
            key.revoked_at = timezone.now()
            key.save(update_fields=["revoked_at"])
            audit("apikey.revoke", actor=actor, obj=key, company=key.user.current_company,
                  after={"prefix": key.prefix})
    return key


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def authenticate_api_key(secret: str) -> User | None:
    """Return the active user owning `secret`, or None. Constant-time hash comparison."""
    if not secret.startswith(API_KEY_PREFIX):
        return None
    prefix = secret[len(API_KEY_PREFIX):].split("_", 1)[0]
    key = ApiKey.objects.select_related("user").filter(prefix=prefix, revoked_at=None).first()
    if key is None or not secrets.compare_digest(key.key_hash, hash_key(secret)):
        return None
    if not key.user.is_active:
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key.user
