import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from controlpanel.config_files import ConfigFileError, config_import


class Command(BaseCommand):
    help = "Import coins.json, settings.json and/or allowlist_updated.json (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("--coins", type=Path, help="coins.json")
        # Django's manage.py claims --settings for the settings module; manage.py turns
        # `import_config --settings FILE` into --settings-file so the documented form works.
        parser.add_argument("--settings-file", type=Path, help="settings.json (also accepted as --settings)")
        parser.add_argument("--allowlist", type=Path, help="allowlist_updated.json")
        parser.add_argument(
            "--replace",
            action="store_true",
            help="also remove coins and allowlist symbols the files do not list",
        )

    def handle(self, *args, coins, settings_file, allowlist, replace, **options):
        settings = settings_file
        if not (coins or settings or allowlist):
            raise CommandError("Give at least one of --coins, --settings, --allowlist.")
        documents = {
            name: _read_json(path)
            for name, path in (("coins", coins), ("settings", settings), ("allowlist", allowlist))
            if path
        }
        try:
            report = config_import(**documents, replace=replace)
        except ConfigFileError as error:
            raise CommandError(f"{error} Nothing was imported.") from None
        for line in report.lines():
            self.stdout.write(line)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CommandError(f"{path}: no such file.") from None
    except json.JSONDecodeError as error:
        raise CommandError(f"{path}: not valid JSON ({error.msg} at line {error.lineno}).") from None
