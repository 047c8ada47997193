"""Helpdesk services: the only writers of tickets."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from mailroom.apps.helpdesk.models import Ticket
from mailroom.chatter.services import save_record


def save_ticket(ticket: Ticket, *, actor) -> Ticket:
    """Create or update a ticket; the HD- reference is taken on first save."""
    return save_record(ticket, actor=actor)


def set_stage(ticket: Ticket, stage: str, *, actor) -> Ticket:
    """Move a ticket to `stage`; the chatter gets a "Stage: New → Solved" line."""
    if stage not in Ticket.Stage.values:
        raise ValidationError({"stage": f"Unknown stage {stage!r}."})
    if ticket.stage == stage:
        return ticket
    ticket.stage = stage
    return save_record(ticket, actor=actor)


def mark_solved(ticket: Ticket, *, actor) -> Ticket:
    return set_stage(ticket, Ticket.Stage.SOLVED, actor=actor)


def mark_in_progress(ticket: Ticket, *, actor) -> Ticket:
    return set_stage(ticket, Ticket.Stage.IN_PROGRESS, actor=actor)


def assign(ticket: Ticket, user, *, actor) -> Ticket:
    """Give the ticket to `user` (None to unassign); must work in the ticket's company."""
    ticket.user = user
    return save_record(ticket, actor=actor)
