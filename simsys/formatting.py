"""How a quantity is shown: the one place that turns seconds, bytes, fractions and money into text.

Standard library only, so the CLI, the HTML of notebooks and reports, the plots and the scenario
loader all import it and say a number the same way. The data behind the text stays in base
units (seconds, bytes, fractions, price units); only what is shown changes.

The rules, decided once:

- **durations** in the largest unit that keeps them readable (``4 ms``, ``45 s``, ``10 min``,
  ``2.5 h``), three significant digits; **latencies** always in ms (a table compares them).
- **sizes** in decimal units, **MB = 10⁶ bytes** (KB 10³, GB 10⁹), the units a scenario file's
  ``512MB`` means; ``validate``, ``run``, ``report`` and the plots all say MB.
- **fractions** as percentages that never round a failure away (99.9996 % stays, not 100 %).
- **rates** with four significant digits and their unit (``req/s``).
- **money** (``cost``: replica-hours × a service's ``price``, in whatever currency the prices
  are in) with two decimals and the unit ``price·h``.
- **mean ± half-width**: the half-width to two significant digits, the mean to the same
  decimals, thousands separated, never an exponent (``52.770 ± 0.054``, ``26,200 ± 7,800``).
- a **table column** carries its unit once, in its header (:func:`column_header`), and its cells
  are numbers in that unit (:func:`fmt_in_unit`); :func:`metric_label` says which unit a
  flattened summary key takes.

>>> fmt_ms(0.0833), fmt_bytes(208_192_000), fmt_duration(20_000)
('83.3 ms', '208 MB', '5.56 h')
>>> fmt_mean_pm(52.7712, 0.05403), fmt_mean_pm(26_170, 7785)
('52.771 ± 0.054', '26,200 ± 7,800')
"""

from __future__ import annotations

import html
import math
import numbers
from typing import Any

__all__ = [
    "DASH",
    "LATENCY_NAMES",
    "column_header",
    "fmt_bytes",
    "fmt_count",
    "fmt_duration",
    "fmt_in_unit",
    "fmt_mean_pm",
    "fmt_money",
    "fmt_ms",
    "fmt_number",
    "fmt_pct",
    "fmt_rate",
    "fmt_value",
    "is_missing",
    "metric_label",
    "sim_time",
]

DASH = "–"
LATENCY_NAMES = {"mean": "mean", "p50": "p50", "p90": "p90", "p95": "p95", "p99": "p99",
                 "p999": "p99.9", "max": "max"}
MONEY_UNIT = "price·h"


def is_missing(x: Any) -> bool:
    """None, NaN and infinities: shown as a dash."""
    if x is None:
        return True
    try:
        return not math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _text(x: Any) -> str | None:
    """Values that are not numbers (``"10min"`` in an unresolved scenario) are shown as given."""
    if isinstance(x, str | bool) or not (x is None or isinstance(x, numbers.Real)):
        return html.escape(str(x))
    return None


def _trim(text: str) -> str:
    """``'8.00'`` → ``'8'``, ``'3.50'`` → ``'3.5'``."""
    return text.rstrip("0").rstrip(".") if "." in text else text


def _decimals(x: float, digits: int) -> int:
    """Decimals (negative: rounding to tens, hundreds…) that keep ``digits`` significant digits."""
    if x == 0 or not math.isfinite(x):
        return 0
    return digits - 1 - math.floor(math.log10(abs(x)))


def _fixed(x: float, decimals: int) -> str:
    """``x`` rounded to ``decimals`` (negative: to tens, hundreds…), thousands separated."""
    if decimals < 0:
        return f"{round(x, decimals):,.0f}"
    return f"{x:,.{decimals}f}"


def fmt_number(x: float, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits, trailing zeros dropped, never an exponent.

    >>> fmt_number(0.0004567), fmt_number(123456.7), fmt_number(2.5)
    ('0.000457', '123,000', '2.5')
    """
    if is_missing(x):
        return DASH
    x = float(x)
    if x == 0:
        return "0"
    d = _decimals(x, digits)
    return _trim(_fixed(x, max(d, 0))) if d >= 0 else _fixed(x, d)


def fmt_ms(seconds: float | None) -> str:
    """A latency in milliseconds: ``0.0833`` → ``'83.3 ms'``."""
    if _text(seconds) is not None:
        return _text(seconds)  # type: ignore[return-value]
    if is_missing(seconds):
        return DASH
    return f"{fmt_number(float(seconds) * 1e3)} ms"


def fmt_duration(seconds: float | None) -> str:
    """A span of (simulated) time in the largest unit that keeps it readable.

    >>> fmt_duration(0.004), fmt_duration(45), fmt_duration(600), fmt_duration(9000)
    ('4 ms', '45 s', '10 min', '2.5 h')
    """
    if _text(seconds) is not None:
        return _text(seconds)  # type: ignore[return-value]
    if is_missing(seconds):
        return DASH
    s = float(seconds)
    if s == 0:
        return "0 s"
    if abs(s) < 1e-6:
        return f"{fmt_number(s * 1e9)} ns"
    if abs(s) < 1e-3:
        return f"{fmt_number(s * 1e6)} µs"
    if abs(s) < 1:
        return f"{fmt_number(s * 1e3)} ms"
    if abs(s) < 120:
        return f"{fmt_number(s)} s"
    if abs(s) < 7200:
        return f"{fmt_number(s / 60)} min"
    return f"{fmt_number(s / 3600)} h"


def sim_time(now: float, total: float | None = None) -> str:
    """Simulated time reached, for a progress bar: ``'37.2 s / 1 min'``."""
    return fmt_duration(now) + ("" if total is None else f" / {fmt_duration(total)}")


def fmt_bytes(num_bytes: float | None) -> str:
    """A size in decimal units (MB = 10⁶ bytes, like the scenario files).

    >>> fmt_bytes(1.5e9), fmt_bytes(512)
    ('1.5 GB', '512 B')
    """
    if _text(num_bytes) is not None:
        return _text(num_bytes)  # type: ignore[return-value]
    if is_missing(num_bytes):
        return DASH
    b = float(num_bytes)
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(b) >= scale:
            return f"{fmt_number(b / scale)} {unit}"
    return f"{b:.0f} B"


def fmt_pct(fraction: float | None, digits: int = 2) -> str:
    """A fraction as a percentage; 99.9996 % is never rounded to 100 %, nor 0.0004 % to 0 %.

    >>> fmt_pct(0.5), fmt_pct(0.999996), fmt_pct(1.0), fmt_pct(0.000004)
    ('50.00%', '99.9996%', '100%', '0.0004%')
    """
    if _text(fraction) is not None:
        return _text(fraction)  # type: ignore[return-value]
    if is_missing(fraction):
        return DASH
    p = float(fraction) * 100
    if p in (0.0, 100.0):
        return f"{p:.0f}%"
    d = digits
    while d < 8 and round(p, d) in (0.0, 100.0):
        d += 1
    return f"{p:.{d}f}%"


def fmt_rate(per_second: float | None, unit: str = "req/s") -> str:
    """A rate with four significant digits: ``'1,234 req/s'``."""
    if _text(per_second) is not None:
        return _text(per_second)  # type: ignore[return-value]
    if is_missing(per_second):
        return DASH
    return f"{fmt_number(float(per_second), 4)} {unit}"


def fmt_count(n: Any) -> str:
    """A whole number with thousands separated."""
    if _text(n) is not None:
        return _text(n)  # type: ignore[return-value]
    if is_missing(n):
        return DASH
    return f"{int(n):,}"


def fmt_money(amount: float | None, unit: str = MONEY_UNIT) -> str:
    """Money with two decimals and its unit: ``'12.50 price·h'`` (prices are per replica-hour,
    in whatever currency the scenario's ``price`` fields use)."""
    if is_missing(amount):
        return DASH
    return f"{float(amount):,.2f}" + (f" {unit}" if unit else "")


def fmt_mean_pm(mean: float, half: float | None) -> str:
    """``mean ± half``: the half-width to two significant digits, the mean to the same
    decimals; no half-width (one run) shows the mean to four digits.

    >>> fmt_mean_pm(52.7712, 0.05403), fmt_mean_pm(0.1234, 0), fmt_mean_pm(3.0, float("nan"))
    ('52.771 ± 0.054', '0.1234 ± 0', '3')
    """
    if is_missing(mean):
        return DASH
    mean = float(mean)
    if half is None or is_missing(half):
        return fmt_number(mean, 4)
    half = abs(float(half))
    if half <= abs(mean) * 1e-9:  # zero, or rounding noise of identical runs (3.9e-16)
        return fmt_number(mean, 4) + " ± 0"
    d = _decimals(half, 2)
    return f"{_fixed(mean, d)} ± {_fixed(half, d)}"


# -- the unit of a table column ---------------------------------------------------------------
def metric_label(key: str) -> tuple[str, float, str]:
    """``(readable name, scale, unit)`` of a flattened summary key such as ``latency.p99``:
    a column of ``key`` shows ``value × scale`` in ``unit``.

    >>> metric_label("latency.p99")
    ('p99 latency', 1000.0, 'ms')
    >>> metric_label("services.cart.utilization")
    ('cart utilization', 100.0, '%')
    """
    parts = key.split(".")
    last = parts[-1]
    if parts[0] == "latency":
        return f"{LATENCY_NAMES.get(last, last)} latency", 1e3, "ms"
    if key == "throughput":
        return "throughput", 1.0, "req/s"
    if key in ("error_rate", "availability"):
        return key.replace("_", " "), 100.0, "%"
    if key == "cost" or last == "cost":
        return ("cost" if key == "cost" else f"{'.'.join(parts[1:-1])} cost"), 1.0, MONEY_UNIT
    if key == "replicas":
        return "replicas", 1.0, ""
    if parts[0] == "memory" or last == "memory_peak":
        name = ".".join(parts[1:-1]) if parts[0] == "services" else ""
        return (f"{name} peak memory".strip()), 1e-6, "MB"
    if parts[0] == "requests":
        return f"requests {last}", 1.0, "requests"
    if last in ("mttr", "mttd", "mtbf"):
        name = ".".join(parts[1:-1]) if parts[0] == "services" else ""
        return f"{name} {last.upper()}".strip(), 1.0, "s"
    if parts[0] == "incidents":
        return f"incidents {last}", 1.0, ""
    if parts[0] == "services" and len(parts) >= 3:
        name = ".".join(parts[1:-1])
        if last in ("availability", "utilization"):
            return f"{name} {last}", 100.0, "%"
        return f"{name} {last}", 1.0, ""
    if parts[0] == "websockets":
        return f"WebSocket {last.replace('_', ' ')}", 1.0, ""
    return key, 1.0, ""


def column_header(key: str) -> str:
    """A table column's header: the key with its unit, ``'latency.p99 (ms)'``."""
    unit = metric_label(key)[2]
    return key + (f" ({unit})" if unit else "")


def fmt_in_unit(key: str, value: float | None, half: float | None = None) -> str:
    """A cell of ``key``'s column: the number in the column's unit (no unit repeated), with
    ``± half`` when given (``half`` in base units too)."""
    _, scale, unit = metric_label(key)
    if is_missing(value):
        return DASH
    h = None if half is None or is_missing(half) else float(half) * scale
    if half is not None:
        return fmt_mean_pm(float(value) * scale, h if h is not None else float("nan"))
    # the digits of the unit's own formatter: rates four (fmt_rate), the rest three (fmt_ms …)
    return fmt_number(float(value) * scale, 4 if unit == "req/s" else 3)


def fmt_value(key: str, value: Any) -> str:
    """A flattened summary value in the unit :func:`metric_label` gives it, unit included."""
    if is_missing(value) or not isinstance(value, int | float):
        return DASH if is_missing(value) else html.escape(str(value))
    _, scale, unit = metric_label(key)
    if unit == "%":
        return fmt_pct(value)
    if unit == "ms":
        return fmt_ms(value)
    if unit == "MB":
        return fmt_bytes(value)
    if unit == "s":
        return fmt_duration(value)
    if unit == "req/s":
        return fmt_rate(value)
    if unit == MONEY_UNIT:
        return fmt_money(value)
    if float(value).is_integer():
        return fmt_count(value)
    return fmt_number(float(value) * scale, 4) + (f" {unit}" if unit else "")
