"""First-run secrets: write SECRET_KEY and CONTROL_API_TOKEN into .env when absent.

Runs before Django is configured (settings refuse to load without SECRET_KEY), so it
uses only the standard library. The API token is printed once, when it is made;
afterwards it lives only in .env (mode 0600), never in the database or logs.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

GENERATED = ("SECRET_KEY", "CONTROL_API_TOKEN")


def read_env_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    keys = set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            keys.add(line.split("=", 1)[0].strip().removeprefix("export ").strip())
    return keys


def ensure_env_file(path: Path, environ=os.environ) -> dict[str, str]:
    """Append any missing generated secret to `path`; return what was generated.

    A value already in the process environment counts as present: the owner may
    manage secrets outside .env (systemd, docker env files).
    """
    present = read_env_keys(path) | {key for key in GENERATED if environ.get(key)}
    generated = {}
    for key in GENERATED:
        if key not in present:
            generated[key] = secrets.token_urlsafe(48 if key == "SECRET_KEY" else 32)
    if generated:
        existing = path.read_text() if path.exists() else ""
        lines = [] if not existing or existing.endswith("\n") else [""]
        lines.append("# generated on first run by controlpanel.bootstrap; keep this file private")
        lines += [f"{key}={value}" for key, value in generated.items()]
        path.write_text(existing + "\n".join(lines) + "\n")
        path.chmod(0o600)
    return generated


def main() -> int:
    path = Path(__file__).resolve().parent.parent / ".env"
    generated = ensure_env_file(path)
    if "CONTROL_API_TOKEN" in generated:
        print(
            "\n  Your API token (shown once; it is stored in .env):\n"
            f"    CONTROL_API_TOKEN={generated['CONTROL_API_TOKEN']}\n"
            "  Use it as: Authorization: Bearer <token>\n",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
