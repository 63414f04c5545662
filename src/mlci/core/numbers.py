"""Numbers for people: what the gate's messages, the report and the CLI print."""

from __future__ import annotations


def format_number(value: float | int) -> str:
    """Readable precision: 4 significant digits, never rounding a small number to 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    value = float(value)
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.4g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        exp = int(exponent)
        if -5 <= exp < 0:
            return f"{value:.{3 - exp}f}".rstrip("0").rstrip(".")
        return f"{mantissa}e{exp}"
    return text
