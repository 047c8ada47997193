"""Automation services: the only writers of automation rules. The switch that keeps mail
which is itself automatic from triggering more mail is `core.automatic` (the router, below
automation, sets it).

Rules are configuration, so every change is audited. Validation lives here (not in the
form) so the admin, the API and `install_example_rules` refuse the same things with the same
words.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from mailroom.automation import actions
from mailroom.automation.models import AutomationRule
from mailroom.automation.rule_cache import rules_changed
from mailroom.core import record_types
from mailroom.core.access import perm, require
from mailroom.core.services import audit, snapshot
from mailroom.templating.actions import default_template

Trigger = AutomationRule.Trigger

# --- what a rule may name --------------------------------------------------------------------

def _field(model: type[models.Model], name: str) -> models.Field | None:
    try:
        field = model._meta.get_field(name)
    except Exception:
        return None
    return field if getattr(field, "concrete", False) else None


def state_fields(model: type[models.Model]) -> list[models.Field]:
    """Fields with a fixed list of values (stage, state, priority…)."""
    return [f for f in model._meta.concrete_fields if f.choices and not f.primary_key]


def date_fields(model: type[models.Model]) -> list[models.Field]:
    """DateField and DateTimeField (a subclass), except the bookkeeping ones."""
    return [f for f in model._meta.concrete_fields if isinstance(f, models.DateField)
            and f.name not in ("updated_at",)]


def _names(fields: list[models.Field]) -> str:
    return ", ".join(f.name for f in fields) or "none"


def _values(field: models.Field) -> list[str]:
    return [str(value) for value, _ in field.flatchoices]


def normalize_conditions(model: type[models.Model], conditions) -> dict[str, list]:
    """{"state": "posted"} or {"state": ["posted"]} → {"state": ["posted"]}, checked."""
    if not conditions:
        return {}
    if not isinstance(conditions, dict):
        raise ValidationError({"conditions": 'Write conditions as {"field": ["value", …]}.'})
    clean: dict[str, list] = {}
    problems = []
    for name, wanted in conditions.items():
        field = _field(model, str(name))
        values = wanted if isinstance(wanted, list) else [wanted]
        if isinstance(field, models.BooleanField):
            if not all(isinstance(v, bool) for v in values):
                problems.append(f"{name}: use true or false.")
                continue
            clean[name] = values
        elif field is None or not field.choices:
            problems.append(f"“{name}” is not a field with fixed values; choose one of: "
                            f"{_names(state_fields(model))}.")
        else:
            allowed = _values(field)
            bad = [str(v) for v in values if str(v) not in allowed]
            if bad or not values:
                problems.append(f"{name}: “{', '.join(bad) or '(none)'}” is not one of "
                                f"{', '.join(allowed)}.")
            else:
                clean[name] = [str(v) for v in values]
    if problems:
        raise ValidationError({"conditions": problems})
    return clean


def _plural(key: str) -> str:
    try:
        return record_types.get(key).label_plural.lower()
    except LookupError:
        return key


def _check_action(rule: AutomationRule, plural: str) -> dict[str, list[str]]:
    """The action exists, has the template it needs, and can act on this record type."""
    try:
        action = actions.get_action(rule.action)
    except LookupError:
        known = ", ".join(label for _, label in actions.choices())
        return {"action": [f"Choose what the rule does: {known}."]}
    template = rule.template if rule.template_id else None
    if template is None:
        if action.template == "required":
            return {"template": [f"Choose the template to send: “{action.label}” needs "
                                 f"one."]}
    elif action.template == "unused":
        rule.template = None
    elif template.record_type != rule.record_type:
        return {"template": [f"“{template.name}” is a template for "
                             f"{_plural(template.record_type)}, not {plural}."]}
    elif template.company_id not in (None, rule.company_id):
        return {"template": ["This template belongs to another company."]}
    elif not template.active:
        return {"template": [f"“{template.name}” is archived."]}
    if action.validate is not None:
        try:
            action.validate(rule)
        except ValidationError as exc:
            return exc.message_dict if hasattr(exc, "error_dict") else {
                "action": exc.messages}
    return {}


def validate_rule(rule: AutomationRule) -> None:
    """Refuse a rule that could never fire or would send the wrong template, naming the field.

    Also clears the settings the chosen trigger does not use, so a rule reads as what it does.
    """
    try:
        record_type = record_types.get(rule.record_type)
    except LookupError:
        raise ValidationError({"record_type": "Choose what the rule applies to."}) from None
    model, plural = record_type.model, record_type.label_plural.lower()
    errors: dict[str, list[str]] = {}
    if rule.trigger == Trigger.STATE:
        field = _field(model, rule.state_field)
        if field is None or not field.choices:
            errors["state_field"] = [f"{record_type.label_plural} have no state field "
                                     f"“{rule.state_field}”; choose one of: "
                                     f"{_names(state_fields(model))}."]
        elif rule.state_value not in _values(field):
            labelled = ", ".join(f"{v} ({label})" for v, label in field.flatchoices)
            errors["state_value"] = [f"“{rule.state_value}” is not a {field.verbose_name} of "
                                     f"{plural}; choose one of: {labelled}."]
    else:
        rule.state_field = rule.state_value = ""
    if rule.trigger == Trigger.DATE:
        field = _field(model, rule.date_field)
        if not isinstance(field, models.DateField):
            errors["date_field"] = [f"“{rule.date_field}” is not a date field of {plural}; "
                                    f"choose one of: {_names(date_fields(model))}."]
        if rule.days > 365:
            errors["days"] = ["At most 365 days."]
    else:
        rule.date_field, rule.days, rule.when = "", 0, AutomationRule.When.BEFORE
    if rule.trigger not in Trigger.values:
        errors["trigger"] = ["Choose when the rule fires."]
    try:
        rule.conditions = normalize_conditions(model, rule.conditions)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    errors.update(_check_action(rule, plural))
    if not (rule.name or "").strip():
        errors["name"] = ["Give the rule a name."]
    if errors:
        raise ValidationError(errors)


# --- writers -----------------------------------------------------------------------------------

# actor None is the system (install_example_rules from the CLI or the demo)
_REFUSALS = {"denied": "Your roles do not allow you to change automated emails.",
             "elsewhere": "This rule belongs to another company."}


def save_rule(rule: AutomationRule, *, actor) -> AutomationRule:
    """Create or update a rule: validated, audited, one transaction."""
    creating = rule.pk is None
    require(actor, perm(rule, "add" if creating else "change"), rule, **_REFUSALS)
    validate_rule(rule)
    before = None if creating else snapshot(AutomationRule.objects.get(pk=rule.pk))
    rule.updated_at = timezone.now()
    rule.updated_by = actor if actor is not None and actor.pk else None
    try:
        with transaction.atomic():
            rule.save()
            audit("automation.rule." + ("create" if creating else "change"), actor=actor,
                  obj=rule, company=rule.company, before=before, after=snapshot(rule))
    except IntegrityError:
        raise ValidationError({"name": "A rule with this name already exists."}) from None
    return rule


def set_active(rule: AutomationRule, active: bool, *, actor) -> AutomationRule:
    require(actor, perm(rule, "change"), rule, **_REFUSALS)
    with transaction.atomic():
        AutomationRule.objects.filter(pk=rule.pk).update(active=active,
                                                         updated_at=timezone.now())
        rules_changed()  # update() sends no post_save
        audit("automation.rule." + ("activate" if active else "deactivate"), actor=actor,
              obj=rule, company=rule.company)
    rule.active = active
    return rule


def delete_rule(rule: AutomationRule, *, actor) -> None:
    require(actor, perm(rule, "delete"), rule, **_REFUSALS)
    with transaction.atomic():
        audit("automation.rule.delete", actor=actor, obj=rule, company=rule.company,
              before=snapshot(rule))
        rule.delete()


# The four examples: (name, record type, trigger settings, action of the template)
EXAMPLES = (
    ("Quotation confirmed: mail the customer", "sales.quotation",
     dict(trigger=Trigger.STATE, state_field="state", state_value="sale"), "send_quotation"),
    ("Ticket created: acknowledge", "helpdesk.ticket",
     dict(trigger=Trigger.CREATED), "acknowledge_ticket"),
    ("Invoice due in 3 days: remind the customer", "invoicing.invoice",
     dict(trigger=Trigger.DATE, date_field="due_date", days=3,
          when=AutomationRule.When.BEFORE,
          conditions={"state": ["posted"], "payment_state": ["not_paid", "partial"]}),
     "invoice_reminder"),
    ("Applicant moved to interview: invite", "recruitment.applicant",
     dict(trigger=Trigger.STATE, state_field="stage", state_value="interview"),
     "interview_invitation"),
    # issue 14: by post, the reminder printed on the cover (only where letters is installed)
    ("Invoice 30 days overdue: letter with the reminder", "invoicing.invoice",
     dict(action="letter", trigger=Trigger.DATE, date_field="due_date", days=30,
          when=AutomationRule.When.AFTER,
          conditions={"state": ["posted"], "payment_state": ["not_paid", "partial"]}),
     "invoice_reminder"),
)


def install_example_rules(company, *, actor=None) -> list[AutomationRule]:
    """Create the example rules for `company` with its default templates (idempotent:
    rules whose name exists, whose template is missing or whose action no installed app
    offers are skipped). For the demo and for administrators who want a starting point;
    nothing calls it on its own."""
    created = []
    offered = {key for key, _ in actions.choices()}
    for name, record_type, settings, action in EXAMPLES:
        template = default_template(company, action)
        if template is None or settings.get("action", actions.EMAIL) not in offered or \
                AutomationRule.objects.filter(company=company, name=name).exists():
            continue
        created.append(save_rule(AutomationRule(company=company, name=name,
                                                record_type=record_type, template=template,
                                                **settings), actor=actor))
    return created
