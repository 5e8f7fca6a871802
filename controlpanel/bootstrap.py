"""First-run secrets: write SECRET_KEY and CONTROL_API_TOKEN into .env when absent or empty.

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


def _env_line(line: str) -> tuple[str, str] | None:
    """`KEY=value` (or `export KEY=value`) as (key, value without quotes); None for other lines."""
    line = line.strip()
    if not line or line.startswith("#") or "=" not in line:
        return None
    key, value = line.split("=", 1)
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return key.strip().removeprefix("export ").strip(), value.strip()


def read_env_values(path: Path) -> dict[str, str]:
    """The `.env` file's values by name (the last line of a name wins, as django-environ reads it)."""
    if not path.exists():
        return {}
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        parsed = _env_line(line)
        if parsed:
            values[parsed[0]] = parsed[1]
    return values


def read_env_keys(path: Path) -> set[str]:
    return set(read_env_values(path))


def ensure_env_file(path: Path, environ=os.environ) -> dict[str, str]:
    """Fill in any missing or empty generated secret in `path`; return what was generated.

    An empty line such as .env.example's `SECRET_KEY=` counts as missing, and is filled
    in place, so the file keeps one line per name (`grep ^CONTROL_API_TOKEN .env`, as the
    README does, finds the value). A value already in the process environment counts
    as present: the owner may manage secrets outside .env (systemd, docker env files).
    """
    values = read_env_values(path)
    generated = {
        key: secrets.token_urlsafe(48 if key == "SECRET_KEY" else 32)
        for key in GENERATED
        if not values.get(key) and not environ.get(key)
    }
    if not generated:
        return {}
    existing = path.read_text() if path.exists() else ""
    lines, filled = [], set()
    for line in existing.splitlines():
        parsed = _env_line(line)
        if parsed and parsed[0] in generated and not parsed[1]:
            filled.add(parsed[0])
            line = f"{parsed[0]}={generated[parsed[0]]}"
        lines.append(line)
    missing = [key for key in generated if key not in filled]
    if missing:
        lines.append("# generated on first run by controlpanel.bootstrap; keep this file private")
        lines += [f"{key}={generated[key]}" for key in missing]
    path.write_text("\n".join(lines) + "\n")
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
