import json
from pathlib import Path

from django.core.management.base import BaseCommand

from controlpanel.config_files import config_export


class Command(BaseCommand):
    help = "Write coins.json, settings.json and allowlist_updated.json into a folder."

    def add_arguments(self, parser):
        parser.add_argument(
            "--out", type=Path, default=Path("."), help="folder to write into (default: here)"
        )

    def handle(self, *args, out: Path, **options):
        out.mkdir(parents=True, exist_ok=True)
        for name, document in config_export().items():
            (out / name).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            self.stdout.write(f"wrote {out / name}")
