#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlpanel.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(import_config_arguments(sys.argv))


def import_config_arguments(argv):
    """`import_config --settings settings.json` is the documented form, but Django reads any
    --settings as its settings module; hand it to the command as --settings-file instead."""
    # backtest takes the same --settings settings.json.
    if len(argv) < 2 or argv[1] not in ("import_config", "backtest"):
        return argv
    return [
        "--settings-file" + arg[len("--settings") :]
        if arg == "--settings" or arg.startswith("--settings=")
        else arg
        for arg in argv
    ]


if __name__ == "__main__":
    main()
