"""Applicants and job positions."""

import pytest
from django.core.exceptions import ValidationError

from mailroom.business.recruitment import services
from mailroom.business.recruitment.models import Applicant, JobPosition


@pytest.fixture
def job(acme, alice):
    return services.save_job_position(JobPosition(company=acme, name="Support Engineer"),
                                      actor=alice)


def test_applicant_fills_in_from_the_contact(acme, bob, job, customer):
    applicant = services.save_applicant(Applicant(company=acme, job=job, partner=customer),
                                        actor=bob)
    assert (applicant.partner_name, applicant.email) == (customer.name, customer.email)
    assert str(applicant) == f"{customer.name} (Support Engineer)"


def test_stages(acme, bob, job):
    applicant = services.save_applicant(
        Applicant(company=acme, partner_name="Noah", email="noah@mail.example", job=job),
        actor=bob)
    services.move_to_interview(applicant, actor=bob)
    assert applicant.stage == "interview"
    services.refuse(applicant, actor=bob)
    with pytest.raises(ValidationError):
        services.move_to_interview(applicant, actor=bob)


def test_closed_positions_take_no_new_applicants(acme, alice, bob, job):
    services.close_position(job, actor=alice)
    with pytest.raises(ValidationError) as exc:
        services.save_applicant(Applicant(company=acme, partner_name="Late", job=job),
                                actor=bob)
    assert "job" in exc.value.message_dict


def test_job_of_another_company_is_refused(acme, globex, bob, charlie):
    theirs = services.save_job_position(JobPosition(company=globex, name="Spy"), actor=charlie)
    with pytest.raises(ValidationError) as exc:
        services.save_applicant(Applicant(company=acme, partner_name="X", job=theirs),
                                actor=bob)
    assert "job" in exc.value.message_dict


def test_bad_email_is_refused(acme, bob):
    with pytest.raises(ValidationError):
        services.save_applicant(Applicant(company=acme, partner_name="X", email="nope"),
                                actor=bob)
