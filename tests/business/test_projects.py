"""Projects and tasks."""

import datetime

import pytest
from django.core.exceptions import ValidationError

from mailroom.business.projects import services
from mailroom.business.projects.models import Project, Task


@pytest.fixture
def project(acme, alice, customer):
    return services.save_project(Project(company=acme, name="Website", partner=customer,
                                         alias_name=" Website "), actor=alice)


def test_alias_is_normalized_and_unique_per_company(project, acme, globex, alice, charlie):
    assert project.alias_name == "website"
    with pytest.raises(ValidationError):
        services.save_project(Project(company=acme, name="Other", alias_name="website"),
                              actor=alice)
    services.save_project(Project(company=acme, name="No alias"), actor=alice)
    services.save_project(Project(company=acme, name="No alias either"), actor=alice)
    services.save_project(Project(company=globex, name="Theirs", alias_name="website"),
                          actor=charlie)
    with pytest.raises(ValidationError):
        services.save_project(Project(company=acme, name="Bad", alias_name="a b@c"),
                              actor=alice)


def test_task_takes_the_project_customer_and_tracks_stage(project, acme, bob, customer):
    task = services.save_task(Task(company=acme, name="Wireframes", project=project,
                                   user=bob), actor=bob)
    assert task.partner == customer
    services.start(task, actor=bob)
    services.mark_done(task, actor=bob)
    assert task.stage == "done"
    with pytest.raises(ValidationError):
        services.start(task, actor=bob)


def test_task_without_project_is_allowed(acme, bob):
    task = services.save_task(Task(company=acme, name="Inbox item"), actor=bob)
    assert task.project is None


def test_overdue(acme, bob):
    yesterday = datetime.date.today() - datetime.timedelta(days=2)
    task = services.save_task(Task(company=acme, name="Late", deadline=yesterday), actor=bob)
    assert task.is_overdue
    services.mark_done(task, actor=bob)
    assert not task.is_overdue


def test_project_of_another_company_is_refused(project, globex, charlie):
    with pytest.raises(ValidationError) as exc:
        services.save_task(Task(company=globex, name="x", project=project), actor=charlie)
    assert "project" in exc.value.message_dict
