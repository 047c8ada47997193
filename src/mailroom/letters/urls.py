"""/letters/…: pages beyond the admin (filled as the app grows)."""

app_name = "letters"

urlpatterns: list = []
