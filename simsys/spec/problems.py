"""Problems at their places: pydantic's errors in our words, at the user's field path and the
file line, for the scenario reader (:mod:`.load`) and the application compiler (:mod:`.app`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import Problem, ScenarioError

Loc = tuple[Any, ...]
Positions = dict[Loc, tuple[int, int]]

# pydantic inserts the tag of a discriminated union into error locations; they are not keys.
TAGS = frozenset(
    {"constant", "exponential", "uniform", "normal", "lognormal", "pareto", "empirical"}
    | {"poisson", "closed", "websocket", "polling"}
    | {"crash", "latency", "loss", "partition", "slowdown", "memory_leak"}
    | {"call", "parallel"}
    | {"stop_rule"}
)


def clean_loc(loc: Iterable[Any], data: Any) -> Loc:
    """Drop the parts of a pydantic location that are not keys of the data (union tags etc.)."""
    out: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif part in TAGS or (isinstance(part, str) and part.startswith("function-")):
            continue
        elif isinstance(part, str) and part.endswith("]"):
            continue  # e.g. "list[...]" or "union[...]"
        elif node is not None and not isinstance(node, Mapping | list):
            continue  # inside a scalar the model expanded: 5ms → {dist: constant, value: 5ms}
        else:
            out.append(part)
            node = None
    return tuple(out)


def dotted(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def describe(err: dict[str, Any]) -> str:
    """Our wording of one pydantic error: what was expected, and what was given."""
    kind = err["type"]
    given = err.get("input")
    ctx = err.get("ctx") or {}
    got = f", got {given!r}"
    if kind == "value_error":
        msg = str(ctx.get("error", err["msg"]))
        return msg
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": "≥", "greater_than": ">", "less_than_equal": "≤", "less_than": "<"}[kind]
        bound = next(iter(ctx.values())) if ctx else "?"
        noun = "a whole number" if isinstance(given, int) and not isinstance(given, bool) else "a number"
        return f"expected {noun} {op} {bound}{got}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number{got}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number{got}"
    if kind in ("string_type",):
        return f"expected text{got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false{got}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping{got}"
    if kind in ("list_type",):
        return f"expected a list{got}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected', 'one of the allowed values')}{got}"
    if kind == "union_tag_invalid":
        return (f"expected {ctx.get('discriminator', 'type')} to be one of "
                f"{ctx.get('expected_tags')}, got {ctx.get('tag')!r}")
    if kind == "union_tag_not_found":
        return f"expected a {ctx.get('discriminator', 'type')!s} key"
    if kind == "too_short":
        return f"expected at least {ctx.get('min_length')} item(s)"
    return f"{err['msg']}{got}"


def position(loc: Loc, kind: str, positions: Positions) -> tuple[int | None, int | None]:
    if kind == "extra_forbidden" and (*loc, "<key>") in positions:
        return positions[(*loc, "<key>")]
    probe = loc
    while probe:
        if probe in positions:
            if kind == "missing" and (*probe, "<key>") in positions:
                return positions[(*probe, "<key>")]
            return positions[probe]
        probe = probe[:-1]
    return (None, None)


def locate(loc: Loc, message: str, source: str | None, positions: Positions) -> Problem:
    line, col = position(loc, "", positions)
    return Problem(dotted(loc), message, source, line, col)


class Problems:
    """Problems collected while checking ``data`` (from ``source``, with key ``positions``),
    raised together: a user sees every problem at once."""

    def __init__(self, data: Any, source: str | None, positions: Mapping[Loc, Any]):
        self.data = data
        self.source = source
        self.positions = positions
        self.items: list[Problem] = []
        self._seen: set[tuple[Loc, str]] = set()

    def add(self, loc: Loc, message: str, kind: str = "") -> None:
        """One problem at ``loc`` (a path of keys and indices); a repeat is dropped."""
        if (loc, message) in self._seen:
            return
        self._seen.add((loc, message))
        line, col = position(loc, kind, self.positions)  # type: ignore[arg-type]
        self.items.append(Problem(dotted(loc), message, self.source, line, col))

    def pydantic(self, exc: ValidationError, prefix: Loc = (),
                 suggest: Callable[[Any], str] | None = None) -> None:
        """Every error of a pydantic validation of ``data`` at ``prefix``, in our words;
        ``suggest(key)`` adds a "did you mean" to unknown keys."""
        for err in exc.errors(include_url=False):
            loc = clean_loc((*prefix, *err["loc"]), self.data)
            if err["type"] == "union_tag_invalid":  # point at the tag itself: workload[1].type
                loc = (*loc, str((err.get("ctx") or {}).get("discriminator", "type")).strip("'"))
            message = describe(err)
            if suggest is not None and err["type"] == "extra_forbidden" and loc:
                message += suggest(loc[-1])
            self.add(loc, message, err["type"])

    def raise_if_any(self) -> None:
        if self.items:
            raise ScenarioError(list(self.items))
