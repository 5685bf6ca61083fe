"""Money as the contracts service reads it: `Decimal`, never float.

Amounts arrive as decimal strings (or whole numbers), are checked against the currency's minor unit and
rounded half up explicitly; a plain domain module (standard library and the platform's inputs only).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from consultflow.platform.errors import InvalidArgument

MAX_AMOUNT = Decimal(10) ** 15
"""No single amount or total reaches a quadrillion; larger input is a typing mistake."""

# ISO 4217 currencies whose minor unit is not 1/100.
_EXPONENTS = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3}
_PLAIN_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def parse_currency(field: str, value: object) -> str:
    """An ISO 4217 code, upper-cased."""
    text = str(value or "").strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", text):
        raise InvalidArgument(field, f"{value!r} is not an ISO 4217 currency code such as CNY or EUR")
    return text


def minor_unit(currency: str) -> Decimal:
    """The smallest amount of the currency: 0.01 for most, 1 for JPY, 0.001 for KWD."""
    return Decimal(1).scaleb(-_EXPONENTS.get(currency, 2))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Rounds half up to the currency's minor unit (the commercial rule)."""
    return amount.quantize(minor_unit(currency), rounding=ROUND_HALF_UP)


def parse_decimal(
    field: str, value: object, places: int, what: str = "a decimal", currency: str = ""
) -> Decimal:
    """A non-negative exact decimal from a string or a whole number; floats are refused because they
    cannot hold money exactly. `currency`, when `places` is its minor unit, is named in that error."""
    if isinstance(value, bool) or value is None:
        raise InvalidArgument(field, f'is required as {what} string such as "1200.50"')
    if isinstance(value, float):
        raise InvalidArgument(
            field, f'must be {what} string such as "1200.50", not a floating-point number ({value!r})'
        )
    if isinstance(value, Decimal):
        number = value
    else:
        text = str(value).strip()
        if not _PLAIN_DECIMAL.match(text):
            raise InvalidArgument(field, f'{value!r} is not {what} such as "1200.50"')
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise InvalidArgument(field, f"{value!r} is not {what}") from None
    if not number.is_finite():
        raise InvalidArgument(field, "must be a finite number")
    if number < 0:
        raise InvalidArgument(field, "must not be negative")
    if number >= MAX_AMOUNT:
        raise InvalidArgument(field, f"must be less than {MAX_AMOUNT:,}")
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > places:
        raise InvalidArgument(
            field, f"has more than {places} decimal places" + (f" for {currency}" if currency else "")
        )
    return number


def parse_money(field: str, value: object, currency: str) -> Decimal:
    """An amount in `currency`: exact, not negative, no finer than the currency's minor unit."""
    return parse_decimal(field, value, _EXPONENTS.get(currency, 2), "an amount", currency)


def blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def parse_optional_money(field: str, value: object, currency: str) -> Decimal:
    """An amount that may be left out (None or empty): zero then."""
    return Decimal(0) if blank(value) else parse_money(field, value, currency)


def parse_tax_rate(field: str, value: object) -> Decimal:
    """A tax rate as a fraction (0.06 for 6 %); empty means no tax."""
    if blank(value):
        return Decimal(0)
    rate = parse_decimal(field, value, 4, "a fraction")
    if rate >= 1:
        raise InvalidArgument(field, f"{value!r} must be a fraction below 1, e.g. 0.06 for 6%")
    return rate


def parse_quantity(field: str, value: object) -> Decimal:
    """How many units a line bills; empty means one."""
    if blank(value):
        return Decimal(1)
    quantity = parse_decimal(field, value, 3, "a quantity")
    if quantity == 0:
        raise InvalidArgument(field, "must be more than 0")
    return quantity


def parse_validity_days(field: str, value: object) -> int:
    """A whole number of days (a number or a numeric text; no fractions)."""
    if isinstance(value, bool | float):
        raise InvalidArgument(field, "must be a whole number of days")
    try:
        return int(str(value).strip())
    except ValueError:
        raise InvalidArgument(field, f"{value!r} is not a whole number of days") from None
