"""Request parsing: the one place where request fields become typed values.

Bybit treats an empty string like a missing field, refuses what it can't parse with
retCode 10001, and accepts booleans and integers either as JSON values or as text
(query strings only carry text).
"""

import re
from decimal import Decimal

from .errors import SimError
from .numbers import NumberError, parse_decimal

PARAMS_ERROR = 10001
ORDER_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


def text(params: dict, name: str, *, required: bool = False, default: str = "") -> str:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise SimError(PARAMS_ERROR, f"params error: {name} is required")
        return default
    if not isinstance(value, str):
        raise SimError(PARAMS_ERROR, f"params error: {name} must be a string")
    return value


def choice(
    params: dict, name: str, options: tuple[str, ...], *, required: bool = False, default: str = ""
) -> str:
    value = text(params, name, required=required, default=default)
    if value and value not in options:
        raise SimError(
            PARAMS_ERROR, f"params error: {name} must be one of {', '.join(options)}, got {value!r}"
        )
    return value


def decimal(params: dict, name: str, *, required: bool = False) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise SimError(PARAMS_ERROR, f"params error: {name} is required")
        return None
    try:
        return parse_decimal(value, name)
    except NumberError as error:
        raise SimError(PARAMS_ERROR, f"params error: {error}") from None


def integer(
    params: dict, name: str, *, default: int | None = None, low: int | None = None, high: int | None = None
) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise SimError(PARAMS_ERROR, f"params error: {name} must be an integer")
    if isinstance(value, str):
        if not value.lstrip("-").isdigit():
            raise SimError(PARAMS_ERROR, f"params error: {name} must be an integer, got {value!r}")
        value = int(value)
    if not isinstance(value, int):
        raise SimError(PARAMS_ERROR, f"params error: {name} must be an integer")
    if (low is not None and value < low) or (high is not None and value > high):
        raise SimError(PARAMS_ERROR, f"params error: {name} must be within [{low}, {high}], got {value}")
    return value


def boolean(params: dict, name: str, *, default: bool = False) -> bool:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if value in ("true", "True", 1, "1"):
        return True
    if value in ("false", "False", 0, "0"):
        return False
    raise SimError(PARAMS_ERROR, f"params error: {name} must be true or false")


def linear_category(params: dict) -> None:
    category = text(params, "category", required=True)
    if category != "linear":
        raise SimError(
            PARAMS_ERROR, f"params error: the simulator only serves category linear, got {category!r}"
        )


def page(params: dict, *, default: int, maximum: int) -> tuple[int, int]:
    """`limit` and `cursor` of a paginated list; the simulator's cursors are offsets."""
    limit = integer(params, "limit", default=default, low=1, high=maximum)
    cursor = text(params, "cursor")
    if cursor and not cursor.isdigit():
        raise SimError(PARAMS_ERROR, "params error: cursor invalid")
    return limit, int(cursor or 0)


def paginate(rows: list, limit: int, offset: int) -> tuple[list, str]:
    chunk = rows[offset : offset + limit]
    following = offset + limit
    return chunk, str(following) if following < len(rows) else ""
