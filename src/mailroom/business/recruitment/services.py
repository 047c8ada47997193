"""Recruitment services: the only writers of job positions and applicants."""

from __future__ import annotations

from django.core.exceptions import ValidationError

from mailroom.business.recruitment.models import Applicant, JobPosition
from mailroom.chatter.services import save_record, set_state


def save_job_position(job: JobPosition, *, actor) -> JobPosition:
    return save_record(job, actor=actor)


def save_applicant(applicant: Applicant, *, actor) -> Applicant:
    """Create or update an applicant; name, email and phone default from the contact."""
    return save_record(applicant, actor=actor)


def set_stage(applicant: Applicant, stage: str, *, actor) -> Applicant:
    return set_state(applicant, stage, actor=actor)


def refuse(applicant: Applicant, *, actor) -> Applicant:
    return set_stage(applicant, Applicant.Stage.REFUSED, actor=actor)


def move_to_interview(applicant: Applicant, *, actor) -> Applicant:
    if applicant.stage in (Applicant.Stage.HIRED, Applicant.Stage.REFUSED):
        raise ValidationError("The application is closed.")
    return set_stage(applicant, Applicant.Stage.INTERVIEW, actor=actor)


def close_position(job: JobPosition, *, actor) -> JobPosition:
    """Stop taking applicants for `job`; existing applications stay."""
    if not job.active:
        return job
    job.active = False
    return save_record(job, actor=actor)
