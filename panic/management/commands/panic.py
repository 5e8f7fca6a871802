"""`manage.py panic [--reason TEXT]` and `manage.py panic --reset`: the same services as POST /panic."""

from __future__ import annotations

import getpass

from django.core.management.base import BaseCommand, CommandError

from panic.errors import PanicResetRefused
from panic.services import panic_reset, panic_text, panic_trigger


def _by() -> str:
    try:
        return f"command:{getpass.getuser()}"
    except Exception:  # no login name in some containers
        return "command"


class Command(BaseCommand):
    help = (
        "Panic: lock trading, cancel every order, close every position reduce-only and verify the "
        "account flat on the exchange (exit 1 when it is not). --reset lifts the lock, only when flat."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reason", default="", help="why (journaled and shown with the lock)")
        parser.add_argument(
            "--reset", action="store_true", help="lift the panic lock (refused unless the account is flat)"
        )

    def handle(self, *args, reason, reset, **options):
        if reset:
            if reason:
                raise CommandError("--reason goes with a panic, not with --reset.")
            try:
                result = panic_reset(by=_by())
            except PanicResetRefused as refused:
                raise CommandError(f"Reset refused: {refused.message}") from None
            if result.was_locked:
                self.stdout.write("Panic lock lifted: the exchange shows no position and no open order.")
                if not result.may_trade:
                    self.stdout.write("Trading is still stopped by another switch (halt or daily disable).")
            else:
                self.stdout.write("The panic lock was not on; nothing to reset.")
            return
        result = panic_trigger(by=_by(), reason=reason)
        if not result.flat:
            raise CommandError(panic_text(result))
        self.stdout.write(panic_text(result))
