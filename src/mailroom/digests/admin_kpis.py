"""Admin registrations (see admin.py)."""
