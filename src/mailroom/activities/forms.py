"""Forms of the activities panel and the approval confirmation page."""

from __future__ import annotations

from django import forms

from mailroom.activities.models import ActivityType
from mailroom.activities.services import MAX_FEEDBACK, assignable_users


class ScheduleForm(forms.Form):
    activity_type = forms.ChoiceField(label="Type", choices=ActivityType.choices,
                                      initial=ActivityType.TODO)
    summary = forms.CharField(max_length=200, required=False)
    due_date = forms.DateField(label="Due", error_messages={
        "required": "Give a due date.", "invalid": "Give the due date as YYYY-MM-DD."})
    assignee = forms.ModelChoiceField(queryset=None, label="Assigned to", error_messages={
        "required": "Choose who does it.",
        "invalid_choice": "Choose a user of this record's company."})
    note = forms.CharField(required=False, max_length=MAX_FEEDBACK,
                           widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, company_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = assignable_users(company_id)
        self.fields["assignee"].label_from_instance = lambda u: u.get_full_name() or u.username


class FeedbackForm(forms.Form):
    feedback = forms.CharField(required=False, max_length=MAX_FEEDBACK)


class DecisionForm(FeedbackForm):
    choice = forms.ChoiceField(choices=[("approve", "Approve"), ("refuse", "Refuse")],
                               error_messages={"required": "Choose Approve or Refuse."})
