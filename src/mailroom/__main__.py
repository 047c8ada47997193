"""The `mailroom` console command: Django's command runner with Mailroom's settings."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mailroom.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["mailroom", *sys.argv[1:]])


if __name__ == "__main__":
    main()
