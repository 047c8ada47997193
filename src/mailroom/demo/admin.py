"""The demo's sidebar entry: Email › Caught mail, while the mail catcher is on."""

from mailroom.core import navigation
from mailroom.demo.services import catcher_enabled
from mailroom.demo.views import may_read


def _show(request) -> bool:
    return catcher_enabled() and may_read(request.user)


navigation.add("Email", "Caught mail", "move_to_inbox", "demo:caught_list", check=_show)
