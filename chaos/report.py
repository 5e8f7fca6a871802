"""The run's table (pure): what happened, then each invariant with its count."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chaos.records import Check

VIOLATIONS_SHOWN = 10


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in sorted(counts.items())) or "none"


def table(
    *, header: str, sections: Sequence[tuple[str, Sequence[tuple[str, object]]]], checks: Sequence[Check]
) -> str:
    """`sections`: (title, [(label, value)]); a value that is a mapping prints as counts."""
    lines = [header, ""]
    for title, rows in sections:
        lines.append(title)
        for label, value in rows:
            text = _counts(value) if isinstance(value, Mapping) else str(value)
            lines.append(f"  {label:<34} {text}")
    lines.append(f"{'invariants':<62} checked  violations")
    for check in checks:
        mark = "ok" if check.ok else "VIOLATED"
        lines.append(f"  {check.name:<60} {check.checked:>7}  {len(check.violations):>10}  {mark}")
    failed = [check for check in checks if not check.ok]
    for check in failed:
        lines.append(f"\n{check.name}:")
        lines.extend(f"  - {line}" for line in check.violations[:VIOLATIONS_SHOWN])
        if len(check.violations) > VIOLATIONS_SHOWN:
            lines.append(f"  ... and {len(check.violations) - VIOLATIONS_SHOWN} more")
    total = sum(len(check.violations) for check in checks)
    lines.append("")
    lines.append(
        "RESULT: PASS" if not failed else f"RESULT: FAIL ({total} violations in {len(failed)} invariants)"
    )
    return "\n".join(lines)
