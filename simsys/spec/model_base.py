"""Building blocks shared by every part of the scenario model: strict models and unit types."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from .limits import MAX_COUNT, MAX_NUMBER
from .units import parse_fraction, parse_rate, parse_size

Rate = Annotated[float, BeforeValidator(parse_rate), Field(gt=0)]
Size = Annotated[float, BeforeValidator(parse_size), Field(ge=0)]
Fraction = Annotated[float, BeforeValidator(parse_fraction)]

BALANCERS = ("round_robin", "random", "least_connections", "power_of_two")
CLIENT = "client"  # the name links use for the outside world: client->gateway


# Annotations (as written: the modules use ``from __future__ import annotations``) of plain
# number fields; units (durations, rates, sizes) have parsers of their own that refuse booleans.
_NUMBER_FIELDS = {"int": int, "float": float, "int | None": int, "float | None": float}


def _has_upper_bound(model: type[BaseModel], name: str) -> bool:
    return any(hasattr(m, "le") or hasattr(m, "lt") for m in model.model_fields[name].metadata)


def _checked_number(cls: type[BaseModel], value: Any, handler: ValidatorFunctionWrapHandler,
                    info: ValidationInfo) -> Any:
    """A number field holds a number, not a boolean (pydantic reads ``true`` as 1), and is
    bounded unless the field sets its own upper bound."""
    kind = _NUMBER_FIELDS[str(cls.__annotations__.get(info.field_name, "float"))]
    if isinstance(value, bool):
        noun = "a whole number" if kind is int else "a number"
        raise ValueError(f"expected {noun}, got {value!r} (booleans are not numbers)")
    value = handler(value)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return value
    if info.field_name is not None and _has_upper_bound(cls, info.field_name):
        return value
    if isinstance(value, int) and abs(value) > MAX_COUNT:
        raise ValueError(f"expected a whole number of at most {MAX_COUNT:,}, got {value:.3g}")
    if isinstance(value, float) and not (math.isfinite(value) and abs(value) <= MAX_NUMBER):
        raise ValueError(f"expected a finite number of at most {MAX_NUMBER:g}, got {value!r}")
    return value


def number_fields(cls: type) -> None:
    """Give each plain number field that ``cls`` declares the check of :func:`_checked_number`.

    Called from ``__init_subclass__`` (pydantic collects validators after it), because a
    ``field_validator("*")`` would also wrap discriminator fields, which pydantic forbids.
    """
    names = [name for name, annotation in cls.__dict__.get("__annotations__", {}).items()
             if str(annotation) in _NUMBER_FIELDS]
    if names:
        check = field_validator(*names, mode="wrap")(classmethod(_checked_number))
        setattr(cls, f"numbers_check_{cls.__qualname__.replace('.', '_')}", check)


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, values are immutable once checked,
    number fields are numbers (not booleans) and bounded (see :func:`number_fields`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        number_fields(cls)


