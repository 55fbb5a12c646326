"""Parsing of the units scenarios are written in.

Everything inside simsys is in seconds, bytes and events per second; these functions turn what
users write (``250us``, ``5ms``, ``10min``, ``200/s``, ``1.5MiB``, ``50%``) into those numbers.
A bare number means seconds, bytes or events per second. Each parser raises ``ValueError`` with a
message that says what was expected; the spec layer adds the file, line and field path.
"""

from __future__ import annotations

import math
import re

from .limits import MAX_DURATION, MAX_RATE, MAX_SIZE

# Seconds per unit. Long forms ("10 minutes") are refused on purpose: one spelling per unit keeps
# scenario files greppable and leaves no doubt whether "m" means minutes or metres.
DURATION_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_DURATION_RE = re.compile(rf"^\s*({_NUMBER})\s*([a-zµ]*)\s*$")
_RATE_RE = re.compile(rf"^\s*({_NUMBER})\s*(?:/\s*([a-zµ]+))?\s*$")
_PERCENT_RE = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")
_SIZE_RE = re.compile(rf"^\s*({_NUMBER})\s*([a-zA-Z]*)\s*$")
# Bytes per unit: SI prefixes are powers of 1000, IEC prefixes (KiB, MiB, …) powers of 1024.
SIZE_UNITS: dict[str, float] = {
    "": 1.0, "b": 1.0,
    "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15,
    "kib": 2.0**10, "mib": 2.0**20, "gib": 2.0**30, "tib": 2.0**40, "pib": 2.0**50,
}

DURATION_HINT = "a duration such as 250us, 5ms, 2s, 10min or 1h"
RATE_HINT = "a rate such as 200/s or 3/min"
SIZE_HINT = "a size such as 512B, 64KB or 1.5MiB"
# the largest magnitude each kind may have (see simsys.spec.limits), with its unit
_BOUNDS = {DURATION_HINT: (MAX_DURATION, "s"), RATE_HINT: (MAX_RATE, "per s"),
           SIZE_HINT: (MAX_SIZE, "bytes")}


def _finite(value: float | int, text: object, hint: str) -> float:
    try:
        number = float(value)
    except OverflowError:  # a 400-digit integer: no float holds it
        raise ValueError(f"expected {hint}, got a number too large") from None
    if not math.isfinite(number):
        raise ValueError(f"expected {hint}, got {text!r}")
    bound, unit = _BOUNDS.get(hint, (math.inf, ""))
    if abs(number) > bound:
        shown = repr(text) if len(repr(text)) <= 40 else f"{number:.3g}"
        raise ValueError(f"expected {hint} of at most {bound:g} {unit}, got {shown}")
    return number


def parse_duration(text: object) -> float:
    """Return a duration in seconds from ``5ms``, ``2s``, ``10min``, ``1h`` or a bare number.

    >>> parse_duration("250us"), parse_duration("10min"), parse_duration(3)
    (0.00025, 600.0, 3.0)
    """
    if isinstance(text, bool):
        raise ValueError(f"expected {DURATION_HINT}, got {text!r}")
    if isinstance(text, int | float):
        return _finite(text, text, DURATION_HINT)
    if not isinstance(text, str):
        raise ValueError(f"expected {DURATION_HINT}, got {text!r}")
    m = _DURATION_RE.match(text)
    if not m:
        raise ValueError(f"expected {DURATION_HINT}, got {text!r}")
    number, unit = m.groups()
    if unit == "":
        scale = 1.0
    elif unit in DURATION_UNITS:
        scale = DURATION_UNITS[unit]
    else:
        units = ", ".join(DURATION_UNITS)
        raise ValueError(f"expected {DURATION_HINT} (units: {units}), got {text!r}")
    return _finite(float(number) * scale, text, DURATION_HINT)


def parse_rate(text: object) -> float:
    """Return a rate in events per second from ``200/s``, ``3/min``, ``0.5/ms`` or a bare number.

    >>> parse_rate("3/min"), parse_rate("200/s"), parse_rate(5)
    (0.05, 200.0, 5.0)
    """
    if isinstance(text, bool):
        raise ValueError(f"expected {RATE_HINT}, got {text!r}")
    if isinstance(text, int | float):
        return _finite(text, text, RATE_HINT)
    if not isinstance(text, str):
        raise ValueError(f"expected {RATE_HINT}, got {text!r}")
    m = _RATE_RE.match(text)
    if not m:
        raise ValueError(f"expected {RATE_HINT}, got {text!r}")
    number, unit = m.groups()
    if unit is None:
        return _finite(float(number), text, RATE_HINT)
    if unit not in DURATION_UNITS:
        units = ", ".join(DURATION_UNITS)
        raise ValueError(f"expected {RATE_HINT} (per one of {units}), got {text!r}")
    return _finite(float(number) / DURATION_UNITS[unit], text, RATE_HINT)


def parse_size(text: object) -> float:
    """Return a size in bytes from ``512B``, ``64KB`` (10³), ``1.5MiB`` (2²⁰) or a bare number.

    >>> parse_size("64KB"), parse_size("1.5MiB"), parse_size(100)
    (64000.0, 1572864.0, 100.0)
    """
    if isinstance(text, bool):
        raise ValueError(f"expected {SIZE_HINT}, got {text!r}")
    if isinstance(text, int | float):
        value = _finite(text, text, SIZE_HINT)
        if value < 0:
            raise ValueError(f"expected {SIZE_HINT}, got {text!r} (sizes are ≥ 0)")
        return value
    if not isinstance(text, str):
        raise ValueError(f"expected {SIZE_HINT}, got {text!r}")
    m = _SIZE_RE.match(text)
    if not m or m.group(2).lower() not in SIZE_UNITS:
        raise ValueError(f"expected {SIZE_HINT} (units: B, KB, MB, GB, KiB, MiB, GiB), got {text!r}")
    value = _finite(float(m.group(1)) * SIZE_UNITS[m.group(2).lower()], text, SIZE_HINT)
    if value < 0:
        raise ValueError(f"expected {SIZE_HINT}, got {text!r} (sizes are ≥ 0)")
    return value


def parse_fraction(text: object) -> float:
    """Return a fraction in [0, 1] from ``50%``, ``0.5`` or ``0.1%``.

    >>> parse_fraction("50%"), parse_fraction(0.001)
    (0.5, 0.001)
    """
    hint = "a fraction between 0 and 1 or a percentage such as 0.1%"
    if isinstance(text, bool):
        raise ValueError(f"expected {hint}, got {text!r}")
    if isinstance(text, int | float):
        value = _finite(text, text, hint)
    elif isinstance(text, str):
        m = _PERCENT_RE.match(text)
        if m:
            value = float(m.group(1)) / 100.0
        else:
            try:
                value = float(text)
            except ValueError:
                raise ValueError(f"expected {hint}, got {text!r}") from None
    else:
        raise ValueError(f"expected {hint}, got {text!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected {hint}, got {text!r}")
    return value
