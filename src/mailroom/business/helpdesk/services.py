"""Helpdesk services: the only writers of tickets."""

from __future__ import annotations

from mailroom.business.helpdesk.models import Ticket
from mailroom.chatter.services import save_record, set_state


def save_ticket(ticket: Ticket, *, actor) -> Ticket:
    """Create or update a ticket; the HD- reference is taken on first save."""
    return save_record(ticket, actor=actor)


def set_stage(ticket: Ticket, stage: str, *, actor) -> Ticket:
    """Move a ticket to `stage`; the chatter gets a "Stage: New → Solved" line."""
    return set_state(ticket, stage, actor=actor)


def mark_solved(ticket: Ticket, *, actor) -> Ticket:
    return set_stage(ticket, Ticket.Stage.SOLVED, actor=actor)


def mark_in_progress(ticket: Ticket, *, actor) -> Ticket:
    return set_stage(ticket, Ticket.Stage.IN_PROGRESS, actor=actor)


def assign(ticket: Ticket, user, *, actor) -> Ticket:
    """Give the ticket to `user` (None to unassign); must work in the ticket's company."""
    ticket.user = user
    return save_record(ticket, actor=actor)
