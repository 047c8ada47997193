"""Writing alias domains, aliases and allowed senders; resolving a recipient address.

`resolve(address)` is the one answer to "is this address ours, and what is it?": the gateway
asks it at RCPT time and the router asks it again when routing, so they never disagree.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction

from mailroom.contacts.models import Partner
from mailroom.core import record_types
from mailroom.core.access import perm, require
from mailroom.core.services import audit, snapshot
from mailroom.core.tokens import bounce_key
from mailroom.lib import verp
from mailroom.routing import commands
from mailroom.routing import defaults as alias_defaults
from mailroom.routing.models import Alias, AliasDomain, AllowedSender
from mailroom.routing.testing import alias_tester

# --- writing ---------------------------------------------------------------------------------

def _changed() -> None:
    """Domains, aliases or allowed senders changed. The cache is forgotten now, so this
    transaction reads its own writes (the admin, the API and tests resolve right after a
    save), and again once the change commits (`transaction.on_commit`), so a reader that
    loaded the state before the commit does not keep it."""
    _cache.clear()
    transaction.on_commit(_cache.clear)


def _save(obj: models.Model, *, actor, unique_message: dict[str, str]) -> models.Model:
    creating = obj.pk is None
    require(actor, perm(obj, "add" if creating else "change"), obj)
    obj.full_clean()
    before = None if creating else snapshot(type(obj).objects.get(pk=obj.pk))
    name = obj._meta.label_lower
    try:
        with transaction.atomic():
            obj.save()
            audit(f"{name}.{'create' if creating else 'change'}", actor=actor, obj=obj,
                  before=before, after=snapshot(obj))
    except IntegrityError:
        raise ValidationError(unique_message) from None
    _changed()
    return obj


def delete(obj: models.Model, *, actor) -> None:
    require(actor, perm(obj, "delete"), obj)
    try:
        with transaction.atomic():
            audit(f"{obj._meta.label_lower}.delete", actor=actor, obj=obj, before=snapshot(obj))
            obj.delete()
    except models.ProtectedError:
        raise ValidationError("Delete or move its aliases first.") from None
    _changed()


def save_alias_domain(domain: AliasDomain, *, actor) -> AliasDomain:
    domain.name = (domain.name or "").strip().lower().rstrip(".")
    return _save(domain, actor=actor,
                 unique_message={"name": "Another company already receives on this domain."})


def validate_alias(alias: Alias) -> None:
    """The record type exists, every default names a writable field with a valid value of the
    alias's own company (`routing.defaults`), and its thread and parent records are its
    company's too."""
    try:
        record_types.get(alias.record_type)
    except LookupError:
        raise ValidationError({"record_type": f"Unknown record type {alias.record_type!r}."}) \
            from None
    if alias.domain_id and alias.domain.company_id != alias.company_id:
        raise ValidationError({"domain": "The domain belongs to another company."})
    errors = alias_defaults.problems(alias.record_type, alias.company_id, alias.defaults)
    if errors:
        raise ValidationError({"defaults": errors})
    problem = alias_defaults.record_problem(alias.thread_content_type_id,
                                            alias.thread_object_id, alias.company_id)
    if problem:
        raise ValidationError({"thread_object_id": problem})
    problem = alias_defaults.record_problem(alias.parent_content_type_id,
                                            alias.parent_object_id, alias.company_id)
    if problem:
        raise ValidationError({"parent_object_id": problem})


def save_alias(alias: Alias, *, actor) -> Alias:
    alias.local_part = (alias.local_part or "").strip().lower()
    validate_alias(alias)
    return _save(alias, actor=actor,
                 unique_message={"local_part": "This address is already an alias."})


def save_allowed_sender(sender: AllowedSender, *, actor) -> AllowedSender:
    sender.pattern = (sender.pattern or "").strip().lower().lstrip("@")
    if not sender.pattern or " " in sender.pattern or sender.pattern.count("@") > 1:
        raise ValidationError({"pattern": "Enter an address (anna@partner.com) or a domain."})
    if sender.alias_id and sender.alias.company_id != sender.company_id:
        raise ValidationError({"alias": "The alias belongs to another company."})
    if sender.alias_domain_id and sender.alias_domain.company_id != sender.company_id:
        raise ValidationError({"alias_domain": "The domain belongs to another company."})
    clash = AllowedSender.objects.filter(
        company_id=sender.company_id, pattern=sender.pattern, alias_id=sender.alias_id,
        alias_domain_id=sender.alias_domain_id).exclude(pk=sender.pk)
    if clash.exists():
        raise ValidationError({"pattern": "This sender is already allowed here."})
    return _save(sender, actor=actor, unique_message={"pattern": "Already allowed."})


def ensure_default_aliases(domain: AliasDomain, *, actor=None) -> list[Alias]:
    """Each record type's default alias (sales@ → Lead, support@ → Ticket…) on a domain."""
    created = []
    for record_type in record_types.all_types():
        if not record_type.default_alias:
            continue
        alias, made = Alias.objects.get_or_create(
            domain=domain, local_part=record_type.default_alias,
            defaults={"company_id": domain.company_id, "record_type": record_type.key})
        if made:
            created.append(alias)
    if created:
        audit("routing.alias.defaults", actor=actor, obj=domain,
              after={"created": [a.local_part for a in created]})
    _changed()
    return created


def sync_record_alias(record: models.Model, local_part: str, *, record_type: str,
                      defaults: dict) -> Alias | None:
    """A record's own alias (a project's website@ → its tasks) on the company's first alias
    domain: created, updated or deactivated to match `local_part`. Followers of the record
    are "followers" for its contact policy."""
    content_type = ContentType.objects.get_for_model(record, for_concrete_model=True)
    existing = Alias.objects.filter(parent_content_type=content_type,
                                    parent_object_id=record.pk).first()
    if not local_part:
        if existing is not None and existing.active:
            Alias.objects.filter(pk=existing.pk).update(active=False)
            _changed()
        return existing
    domain = (AliasDomain.objects.filter(company_id=record.company_id)
              .order_by("sequence", "name").first())
    if domain is None:
        return None
    alias = existing or Alias(company_id=record.company_id, parent_content_type=content_type,
                              parent_object_id=record.pk)
    alias.domain, alias.local_part, alias.record_type = domain, local_part, record_type
    alias.defaults, alias.active = defaults, True
    validate_alias(alias)
    try:
        with transaction.atomic():
            alias.save()
    except IntegrityError:
        raise ValidationError({"alias_name": f"{local_part}@{domain.name} is already used by "
                                             f"another alias."}) from None
    _changed()
    return alias


# --- resolving an address --------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """What one recipient address means to us."""

    kind: str  # "alias" | "bounce" | "reply" | "command" | "catchall"
    address: str
    domain: AliasDomain
    alias: Alias | None = None
    thread: tuple[int, int] | None = None  # (content type id, object id) from a reply token
    bounce: tuple[int, int | None] | None = None  # (mail id, recipient id) from VERP
    command: tuple[str, str] | None = None  # (prefix, token) of a command address

    @property
    def company_id(self) -> int:
        return self.domain.company_id


class _Cache:
    """Domains and aliases for a few seconds: the gateway asks at every RCPT."""

    ttl = 5.0

    def __init__(self) -> None:
        self.loaded = 0.0
        self.generation = 0  # counts clears
        self.domains: dict[str, AliasDomain] = {}
        self.aliases: dict[tuple[int, str], Alias] = {}
        self.allowed: dict[int, list[AllowedSender]] = {}

    def clear(self) -> None:
        self.loaded = 0.0
        self.generation += 1

    def fresh(self) -> bool:
        return time.monotonic() - self.loaded < self.ttl

    def refresh(self) -> None:
        if self.fresh():
            return
        generation = self.generation
        domains = {d.name: d for d in AliasDomain.objects.all()}
        aliases = {(a.domain_id, a.local_part): a
                   for a in Alias.objects.filter(active=True).select_related("domain")}
        allowed: dict[int, list[AllowedSender]] = {}
        for entry in AllowedSender.objects.all():
            allowed.setdefault(entry.company_id, []).append(entry)
        self.domains, self.aliases, self.allowed = domains, aliases, allowed
        # cleared while loading (a change committed meanwhile): use it once, keep it not
        self.loaded = time.monotonic() if generation == self.generation else 0.0


_cache = _Cache()


def clear_cache() -> None:
    _cache.clear()


STALE = object()  # resolve(load=False): the cache must be loaded first


def resolve(address: str, *, load: bool = True):
    """The meaning of a recipient address (a Target), or None when it is not ours (refuse
    it). `load=False`: never ask the database — STALE when the cached domains and aliases
    are too old to answer (the gateway's event loop answers RCPT itself while they are
    fresh, and hands the lookup to a database thread only when they are not)."""
    address = (address or "").strip().strip("<>").strip()
    local, at, domain_name = address.rpartition("@")
    if not at or not local:
        return None
    if load:
        _cache.refresh()
    elif not _cache.fresh():
        return STALE
    domain = _cache.domains.get(domain_name.lower().rstrip("."))
    if domain is None:
        return None
    local = local.lower()
    base, plus, token = local.partition(verp.SEPARATOR)
    address = f"{local}@{domain.name}"
    if base == domain.bounce_alias:
        return Target("bounce", address, domain,
                      bounce=verp.parse_bounce_address(address, bounce_key()) if plus else None)
    if plus and token and commands.lookup(base) is not None:  # e.g. unsubscribe+<token>@
        return Target("command", address, domain, command=(base, token))
    thread = None
    if plus:
        ids = verp.parse_reply_token(token, bounce_key())
        if ids and len(ids) == 2:
            thread = (ids[0], ids[1])
    alias = _cache.aliases.get((domain.pk, base))
    if thread is not None:
        return Target("reply", address, domain, alias=alias, thread=thread)
    if alias is not None:
        return Target("alias", address, domain, alias=alias)
    if base == domain.catchall_alias or domain.accept_unknown:
        return Target("catchall", address, domain)
    return None


# --- testing an alias ---------------------------------------------------------------------

SAMPLE_SENDER = "sample.sender@example.org"


def run_alias_test(alias: Alias, *, actor, sender: str = "") -> tuple[bool, str]:
    """Route a made-up message to the alias (rolled back) and keep the verdict on it.

    A refused or quarantined decision makes the alias invalid, with the reason. The router
    (a higher floor) registers its dry run in `routing.testing`."""
    require(actor, "routing.change_alias", denied="Your roles do not allow you to test aliases.")
    sender = sender or sample_sender(alias, actor)
    ctx = alias_tester()(company=alias.company, sender=sender, recipient=alias.email,
                         subject="Mailroom alias test")
    last = ctx.trace[-1] if ctx.trace else {"rule": "router", "note": "No rule decided."}
    decision = last.get("decision", "")
    ok = decision not in ("refused", "quarantined", "dropped", "")
    error = "" if ok else f"From {sender}: {last['rule']} — {last.get('note', '')}"
    status = Alias.Status.VALID if ok else Alias.Status.INVALID
    with transaction.atomic():
        Alias.objects.filter(pk=alias.pk).update(status=status, last_error=error[:2000])
        audit("routing.alias.test", actor=actor, obj=alias,
              before={"status": alias.status}, after={"status": status, "sender": sender})
    alias.status, alias.last_error = status, error
    return ok, f"{last['rule']}: {last.get('note', '')}"


def sample_sender(alias: Alias, actor) -> str:
    """A sender the alias's own rules should let in, so the test checks the route."""
    if alias.contact_policy == Alias.ContactPolicy.INTERNAL and actor is not None \
            and actor.email:
        return actor.email
    if alias.contact_policy == Alias.ContactPolicy.PARTNERS:
        partner = (Partner.objects.filter(company_id=alias.company_id).exclude(email="")
                   .order_by("pk").first())
        if partner is not None:
            return partner.email
    if alias.allowlist_only or alias.domain.allowlist_only:
        entries = allowed_senders(alias.company_id, alias, alias.domain)
        for entry in entries:
            return entry.pattern if not entry.is_domain else f"someone@{entry.pattern}"
    return SAMPLE_SENDER


# --- the Reply-To of mail sent from a record ---------------------------------------------------

def reply_address(company_id: int, content_type_id: int, object_id: int) -> str:
    """`catchall+<signed record ids>@domain` on the company's first alias domain, or ""."""
    _cache.refresh()
    domains = sorted((d for d in _cache.domains.values() if d.company_id == company_id),
                     key=lambda d: (d.sequence, d.name))
    if not domains:
        return ""
    domain = domains[0]
    return verp.make_reply_address(domain.catchall_alias, content_type_id, object_id,
                                   domain=domain.name, key=bounce_key())


def reply_address_for(record: models.Model) -> str:
    content_type = ContentType.objects.get_for_model(record, for_concrete_model=True)
    return reply_address(record.company_id, content_type.pk, record.pk)


def allowed_senders(company_id: int, alias: Alias | None, domain: AliasDomain | None
                    ) -> list[AllowedSender]:
    """The entries that apply to mail for this alias on this domain (cached a few seconds,
    like the aliases: the router asks for every message)."""
    _cache.refresh()
    alias_id = alias.pk if alias is not None else None
    domain_id = domain.pk if domain is not None else None
    return [e for e in _cache.allowed.get(company_id, ())
            if (e.alias_id is None and e.alias_domain_id is None)
            or (alias_id is not None and e.alias_id == alias_id)
            or (domain_id is not None and e.alias_domain_id == domain_id and e.alias_id is None)]


def is_allowed(address: str, entries: list[AllowedSender]) -> AllowedSender | None:
    return next((entry for entry in entries if entry.matches(address)), None)
