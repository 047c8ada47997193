"""Activities planned on any record: to-dos, calls, meetings, approvals and their reminders."""
