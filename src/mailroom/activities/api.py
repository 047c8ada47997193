"""Activities through the API (/api/v1/activities): list (yours by default, filtered by due,
state, type and record), schedule on a record, mark done, approve or refuse, cancel.

Every write goes through `activities.services` (record access, assignee of the record's
company, approvals only by their assignee or an Administrator). Activities and records of
other companies answer 404, exactly like ones that do not exist.

No `from __future__ import annotations` here: ninja reads the view functions' annotations.
"""

from datetime import date, datetime
from typing import Literal

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from ninja import Query, Router, Schema
from pydantic import Field

from mailroom.activities import services
from mailroom.activities.models import Activity, ActivityType
from mailroom.api import fields as F
from mailroom.api import writing
from mailroom.api.auth import actor, require_perm
from mailroom.api.crud import ERRORS, Page, list_schema, page, row_id
from mailroom.api.errors import ApiError, FieldErrors, django_errors, field_error
from mailroom.api.specs import StrictIn
from mailroom.core import record_types

prefix = "/activities"
router = Router(tags=["Activities"])

TypeName = Literal[tuple(ActivityType.values)]
StateName = Literal[tuple(Activity.State.values)]
RENAME = {"assignee": "assignee_id", "activity_type": "type"}


class ActivityOut(Schema):
    id: int
    company_id: int
    record_type: str
    record_id: int
    record_name: str
    type: str
    summary: str
    note: str
    due_date: date
    urgency: str = Field(description="overdue, today or planned (later), in your time zone; "
                                     "closed once done, cancelled, approved or refused.")
    assignee_id: int
    requested_by_id: int | None
    state: str
    feedback: str
    created_at: datetime
    done_at: datetime | None
    done_by_id: int | None


ActivityList = list_schema("ActivityList", ActivityOut)


class ActivityFilters(Page):
    mine: bool = Field(True, description="Only activities assigned to you (default); false: "
                                         "everyone's in your companies.")
    state: StateName | None = F.optional(description="Default: planned.")
    due: Literal["overdue", "today", "later"] | None = F.optional(
        description="Planned activities by due date, in your time zone.")
    type: TypeName | None = F.optional()
    record_type: F.Line | None = F.optional(max_length=100,
                                            description="e.g. 'helpdesk.ticket'.")
    record_id: F.Id | None = F.optional()


class ActivityIn(StrictIn):
    record_type: F.Line = Field(..., max_length=100, description="e.g. 'crm.lead'.")
    record_id: F.Id
    type: TypeName = "todo"
    summary: F.Line = Field("", max_length=200, description="Default: the type's name.")
    note: F.Text = Field("", max_length=services.MAX_FEEDBACK)
    due_date: date
    assignee_id: F.Id | None = Field(None, description="A user of the record's company; "
                                                       "default: you.")


class FeedbackIn(StrictIn):
    feedback: F.Text = Field("", max_length=services.MAX_FEEDBACK)


def activity_out(activity: Activity, today: date) -> dict:
    record = activity.record
    closed = not activity.is_planned
    return {
        "id": activity.pk, "company_id": activity.company_id,
        "record_type": activity.content_type.app_label + "." + activity.content_type.model,
        "record_id": activity.object_id, "record_name": str(record) if record else "",
        "type": activity.activity_type, "summary": activity.summary, "note": activity.note,
        "due_date": activity.due_date,
        "urgency": "closed" if closed else activity.urgency(today),
        "assignee_id": activity.assignee_id, "requested_by_id": activity.requested_by_id,
        "state": activity.state, "feedback": activity.feedback,
        "created_at": activity.created_at, "done_at": activity.done_at,
        "done_by_id": activity.done_by_id,
    }


def visible_activities(user):
    require_perm(user, Activity, "view")
    return Activity.objects.for_user(user).select_related("content_type")


def get_activity(user, pk: int) -> Activity:
    activity = visible_activities(user).filter(pk=pk).first()
    if activity is None:
        raise ApiError(404, "No such activity.")
    return activity


def _record(user, record_type: str, record_id: int):
    try:
        model = record_types.get(record_type).model
    except LookupError:
        raise field_error("record_type", "Unknown record type.") from None
    require_perm(user, model, "view")
    record = writing.visible(model, user).filter(pk=record_id).first()
    if record is None:
        raise ApiError(404, "No such record.", "record_id")
    return record


def _write(call):
    try:
        return call()
    except ValidationError as exc:
        raise FieldErrors(django_errors(exc, RENAME)) from None


@router.get("", response={200: ActivityList, **ERRORS}, operation_id="activities_list",
            summary="List activities (yours, planned, by default)")
def list_activities(request, filters: Query[ActivityFilters]):
    user = actor(request)
    queryset = visible_activities(user)
    today = services.user_today(user)
    if filters.mine:
        queryset = queryset.filter(assignee=user)
    queryset = queryset.filter(state=filters.state or Activity.State.PLANNED)
    if filters.due:
        queryset = queryset.filter(**{"overdue": {"due_date__lt": today},
                                      "today": {"due_date": today},
                                      "later": {"due_date__gt": today}}[filters.due])
    if filters.type:
        queryset = queryset.filter(activity_type=filters.type)
    if filters.record_type:
        try:
            model = record_types.get(filters.record_type).model
        except LookupError:
            raise field_error("record_type", "Unknown record type.") from None
        queryset = queryset.filter(content_type=ContentType.objects.get_for_model(
            model, for_concrete_model=True))
    if filters.record_id:
        queryset = queryset.filter(object_id=filters.record_id)
    return page(queryset.order_by("due_date", "pk"), filters.limit, filters.offset,
                lambda a: activity_out(a, today))


@router.get("/{id}", response={200: ActivityOut, **ERRORS}, operation_id="activities_get",
            summary="One activity")
def get_activity_view(request, id: int = row_id()):
    user = actor(request)
    return activity_out(get_activity(user, id), services.user_today(user))


@router.post("", response={201: ActivityOut, **ERRORS}, operation_id="activities_create",
             summary="Schedule an activity on a record",
             description="The assignee is told by email (an approval's mail carries signed "
                         "Approve/Refuse links), unless they prefer notifications in "
                         "Mailroom only.")
def create_activity(request, payload: ActivityIn):
    user = actor(request)
    require_perm(user, Activity, "add")
    record = _record(user, payload.record_type, payload.record_id)
    assignee = user
    if payload.assignee_id is not None:
        assignee = get_user_model().objects.filter(
            pk=payload.assignee_id, is_active=True, companies=record.company_id).first()
        if assignee is None:
            raise field_error("assignee_id", "No active user with that id in the record's "
                                             "company.")
    activity = _write(lambda: services.schedule(
        record, actor=user, activity_type=payload.type, summary=payload.summary,
        note=payload.note, due_date=payload.due_date, assignee=assignee))
    return 201, activity_out(activity, services.user_today(user))


def _complete(request, id: int, call) -> dict:
    user = actor(request)
    require_perm(user, Activity, "change")
    activity = get_activity(user, id)
    _write(lambda: call(activity, user))
    activity.refresh_from_db()
    return activity_out(activity, services.user_today(user))


@router.post("/{id}/done", response={200: ActivityOut, **ERRORS},
             operation_id="activities_done",
             summary="Mark an activity done; the feedback is logged on the record")
def mark_done(request, payload: FeedbackIn, id: int = row_id()):
    return _complete(request, id, lambda a, user: services.mark_done(
        a, actor=user, feedback=payload.feedback))


@router.post("/{id}/approve", response={200: ActivityOut, **ERRORS},
             operation_id="activities_approve",
             summary="Approve an approval (its assignee or an Administrator)")
def approve(request, payload: FeedbackIn, id: int = row_id()):
    return _complete(request, id, lambda a, user: services.approve(
        a, actor=user, feedback=payload.feedback))


@router.post("/{id}/refuse", response={200: ActivityOut, **ERRORS},
             operation_id="activities_refuse",
             summary="Refuse an approval (its assignee or an Administrator)")
def refuse(request, payload: FeedbackIn, id: int = row_id()):
    return _complete(request, id, lambda a, user: services.refuse(
        a, actor=user, feedback=payload.feedback))


@router.post("/{id}/cancel", response={200: ActivityOut, **ERRORS},
             operation_id="activities_cancel", summary="Cancel a planned activity")
def cancel(request, id: int = row_id()):
    return _complete(request, id, lambda a, user: services.cancel(a, actor=user))
