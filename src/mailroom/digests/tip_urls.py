"""URL patterns, joined in urls.py (one file per concern)."""

urlpatterns: list = []
