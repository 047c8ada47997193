"""The activities box in a record's chatter panel, and the approval link's confirmation page.

The box is a record panel (chatter/panels.py) loaded by htmx; its forms post here and get the
box back (422 with a red line for refused input), plus the chatter note a completion posted,
prepended to the timeline out of band. Writes go through `activities.services` only.

The approval link needs no login: its signed token names the activity and its assignee. A
GET shows what is asked and changes nothing; only the page's POST approves or refuses.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from mailroom.activities import services
from mailroom.activities.forms import DecisionForm, FeedbackForm, ScheduleForm
from mailroom.activities.mail import record_url
from mailroom.activities.models import Activity
from mailroom.activities.tokens import LinkError, read_token
from mailroom.chatter.models import Message
from mailroom.chatter.services import get_record_for_user
from mailroom.core.decorators import office_user_required


def _planned(record, content_type_id: int, user) -> list[Activity]:
    today = services.user_today(user)
    rows = list(Activity.objects.filter(content_type_id=content_type_id, object_id=record.pk,
                                        state=Activity.State.PLANNED)
                .select_related("assignee", "requested_by").order_by("due_date", "pk"))
    for row in rows:
        row.urgency_class = row.urgency(today)
        row.days = (row.due_date - today).days
        row.overdue_days = max(0, -row.days)
        row.user_can_decide = row.is_approval and services.can_decide(user, row)
    return rows


def _render_panel(request, record, content_type_id: int, *, form=None, errors=(),
                  note: Message | None = None, status: int = 200, open_form: bool = False):
    if form is None:
        form = ScheduleForm(company_id=record.company_id, initial={
            "assignee": request.user.pk, "due_date": services.user_today(request.user)})
    if note is not None:
        note = Message.objects.prefetch_related("tracking", "attachments").get(pk=note.pk)
    return render(request, "activities/panel.html", {
        "record": record, "activities": _planned(record, content_type_id, request.user),
        "form": form, "errors": list(errors), "note": note, "open_form": open_form,
        "schedule_url": reverse("activities:schedule", args=[content_type_id, record.pk]),
    }, status=status)


def _activity(request, activity_id: int):
    activity = Activity.objects.for_user(request.user).filter(pk=activity_id).first()
    if activity is None:
        raise Http404("No such activity.")
    record = get_record_for_user(activity.content_type_id, activity.object_id, request.user)
    return activity, record


@office_user_required
@require_GET
def panel(request, content_type_id: int, object_id: int):
    record = get_record_for_user(content_type_id, object_id, request.user)
    return _render_panel(request, record, content_type_id)


@office_user_required
@require_POST
def schedule(request, content_type_id: int, object_id: int):
    record = get_record_for_user(content_type_id, object_id, request.user)
    form = ScheduleForm(request.POST, company_id=record.company_id)
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.schedule(record, actor=request.user, activity_type=data["activity_type"],
                              summary=data["summary"], due_date=data["due_date"],
                              assignee=data["assignee"], note=data["note"])
        except ValidationError as exc:
            _form_errors(form, exc)
        else:
            return _render_panel(request, record, content_type_id)
    return _render_panel(request, record, content_type_id, form=form, status=422,
                         open_form=True)


def _form_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _refused(exc: Exception) -> list[str]:
    if isinstance(exc, ValidationError):
        return list(exc.messages)
    return [str(exc) or "You cannot do this."]


@office_user_required
@require_POST
def done(request, activity_id: int):
    activity, record = _activity(request, activity_id)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        return _render_panel(request, record, activity.content_type_id, status=422,
                             errors=[e for errs in form.errors.values() for e in errs])
    try:
        note = services.mark_done(activity, actor=request.user,
                                  feedback=form.cleaned_data["feedback"])
    except (ValidationError, PermissionDenied) as exc:
        return _render_panel(request, record, activity.content_type_id, status=422,
                             errors=_refused(exc))
    return _render_panel(request, record, activity.content_type_id, note=note)


@office_user_required
@require_POST
def cancel(request, activity_id: int):
    activity, record = _activity(request, activity_id)
    try:
        services.cancel(activity, actor=request.user)
    except (ValidationError, PermissionDenied) as exc:
        return _render_panel(request, record, activity.content_type_id, status=422,
                             errors=_refused(exc))
    return _render_panel(request, record, activity.content_type_id)


@office_user_required
@require_POST
def decide(request, activity_id: int):
    activity, record = _activity(request, activity_id)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _render_panel(request, record, activity.content_type_id, status=422,
                             errors=[e for errs in form.errors.values() for e in errs])
    try:
        note = services.decide(activity, actor=request.user,
                               approve=form.cleaned_data["choice"] == "approve",
                               feedback=form.cleaned_data["feedback"])
    except (ValidationError, PermissionDenied) as exc:
        return _render_panel(request, record, activity.content_type_id, status=422,
                             errors=_refused(exc))
    return _render_panel(request, record, activity.content_type_id, note=note)


# --- the emailed approval link ---------------------------------------------------------------

def _link_page(request, context: dict, status: int = 200):
    return render(request, "activities/approval_link.html", {
        **admin.site.each_context(request), "title": "Approval", **context}, status=status)


@require_http_methods(["GET", "POST"])
def decide_by_link(request, token: str):
    """GET: the confirmation page (changes nothing). POST: approve or refuse as the
    assignee the token names."""
    try:
        link = read_token(token)
    except LinkError as exc:
        return _link_page(request, {"problem": str(exc)}, status=400)
    activity = (Activity.objects.select_related("assignee", "requested_by", "company")
                .filter(pk=link.activity_id).first())
    if activity is None or activity.assignee_id != link.assignee_id or not activity.is_approval:
        return _link_page(request, {"problem": "This link no longer works: the approval was "
                                               "deleted or given to someone else."}, status=410)
    record = activity.record
    context = {"activity": activity, "record": record,
               "record_url": record_url(record) if record is not None else "",
               "record_kind": record._meta.verbose_name if record is not None else "",
               "choice": request.GET.get("choice", "")}
    if not activity.is_planned:
        return _link_page(request, {**context, "spent": True}, status=409)
    if request.method == "GET":
        return _link_page(request, {**context, "form": DecisionForm()})
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _link_page(request, {**context, "form": form}, status=422)
    try:
        services.decide(activity, actor=activity.assignee,
                        approve=form.cleaned_data["choice"] == "approve",
                        feedback=form.cleaned_data["feedback"])
    except (ValidationError, PermissionDenied) as exc:
        return _link_page(request, {**context, "form": form, "problem": _refused(exc)[0]},
                          status=422)
    activity.refresh_from_db()
    return _link_page(request, {**context, "decided": True})
