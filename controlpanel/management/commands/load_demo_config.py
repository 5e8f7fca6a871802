import json
from pathlib import Path

from django.core.management.base import BaseCommand

from controlpanel.config_files import config_import
from trading.models import Coin

DEMO_DIR = Path(__file__).resolve().parents[2] / "demo"


class Command(BaseCommand):
    help = (
        "Load the demo configuration for the simulator's symbols, only into an empty database. "
        "Its coins are marked demo: outside sim they start disabled (make run says so)."
    )

    def handle(self, *args, **options):
        if Coin.objects.exists():
            self.stdout.write("Configuration present; demo configuration not loaded.")
            return
        report = config_import(
            coins=json.loads((DEMO_DIR / "coins.json").read_text()),
            settings=json.loads((DEMO_DIR / "settings.json").read_text()),
            allowlist=json.loads((DEMO_DIR / "allowlist_updated.json").read_text()),
            demo=True,
        )
        self.stdout.write("Demo configuration loaded: " + "; ".join(report.lines()))
