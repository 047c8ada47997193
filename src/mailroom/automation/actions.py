"""What a rule does when it fires: a registry of actions, "send an email" built in.

Automation sits below letters (and any later floor), so it never knows what a letter is:
upper apps register their action here in their `ready()` (`register_action("letter", …)`),
and a rule names its action by key. The choices in the admin come from this registry at form
time, never from database choices that would change whenever an app is added.

An action's `run(rule, record, idempotency_key)` runs inside the firing's savepoint and
returns the row it made (the queued mail, the letter); it raises `ValidationError` or
`TemplateError` with plain words when it cannot, and the firing records them as the run's
error and a note on the record. `validate(rule)` refuses a rule the action could never run,
naming the field (`ValidationError({"action": …})`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from django.core.exceptions import ValidationError
from django.db import models

from mailroom.templating.actions import ACTIONS
from mailroom.templating.rendering import RenderedMail, render_template
from mailroom.templating.services import send_rendered

if TYPE_CHECKING:
    from mailroom.automation.models import AutomationRule

TemplateUse = Literal["required", "optional", "unused"]


@dataclass(frozen=True)
class Action:
    key: str  # stored on the rule: "email", "letter"
    label: str  # what the admin offers: "Send an email"
    run: Callable[..., models.Model]  # (rule, record, idempotency_key) -> what it made
    template: TemplateUse = "required"
    noun: str = ""  # in notes: "Automated letter “…” could not be sent"
    template_help: str = ""  # what the template does for this action, for the form
    validate: Callable[..., None] | None = None  # (rule) -> None or ValidationError


_ACTIONS: dict[str, Action] = {}


def register_action(key: str, label: str, run: Callable[..., models.Model], *,
                    template: TemplateUse = "required", noun: str = "",
                    template_help: str = "",
                    validate: Callable[..., None] | None = None) -> Action:
    """Declare an action rules can take. The same key registered twice with a different
    callable is a programming error (two apps would fight over one key), so it raises."""
    action = Action(key=key, label=label, run=run, template=template, noun=noun or key,
                    template_help=template_help, validate=validate)
    known = _ACTIONS.get(key)
    if known is not None and known.run is not run:
        raise ValueError(f"The automation action {key!r} is registered twice.")
    _ACTIONS[key] = action
    return action


def get_action(key: str) -> Action:
    try:
        return _ACTIONS[key]
    except KeyError:
        raise LookupError(f"No automation action {key!r}.") from None


def all_actions() -> list[Action]:
    return list(_ACTIONS.values())


def choices() -> list[tuple[str, str]]:
    return [(action.key, action.label) for action in _ACTIONS.values()]


def label_of(key: str) -> str:
    return _ACTIONS[key].label if key in _ACTIONS else key


# --- the template, for every action that uses one -----------------------------------------------

def signer(record: models.Model) -> Any:
    """The record's responsible user (salesperson, recruiter) signs the text, so
    "Best regards, {{ user.name }}" still reads right; the action itself is the system's."""
    user = getattr(record, "user", None) if hasattr(record, "user_id") else None
    return user if user is not None and getattr(user, "is_active", False) else None


def render_rule_template(rule: AutomationRule, record: models.Model) -> RenderedMail:
    """The rule's template rendered for `record`, after checking it is still usable (it may
    have been archived or moved since the rule was saved)."""
    template = rule.template
    if not template.active:
        raise ValidationError(f"the template “{template.name}” is archived.")
    if template.record_type != rule.record_type or template.company_id not in (
            None, record.company_id):
        raise ValidationError(f"the template “{template.name}” is not usable for this record.")
    return render_template(template, record, user=signer(record))


# --- the built-in action: send the template by email ----------------------------------------------

def send_email(rule: AutomationRule, record: models.Model, idempotency_key: str) -> Any:
    """Today's behaviour: the rendered template queued as an automatic email."""
    rendered = render_rule_template(rule, record)
    template = rule.template
    assert template is not None  # render_rule_template used it
    action = ACTIONS.get(template.default_for)
    return send_rendered(record, rendered, actor=None, is_automatic=True,
                         idempotency_key=idempotency_key,
                         on_sent=action.on_sent if action else "",
                         server=template.server, auto_delete=template.auto_delete)


EMAIL = "email"
register_action(EMAIL, "Send an email", send_email, template="required", noun="email")
