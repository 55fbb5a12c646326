"""Building blocks shared by every part of the scenario model: strict models and unit types."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .units import parse_fraction, parse_rate, parse_size

Rate = Annotated[float, BeforeValidator(parse_rate), Field(gt=0)]
Size = Annotated[float, BeforeValidator(parse_size), Field(ge=0)]
Fraction = Annotated[float, BeforeValidator(parse_fraction)]

BALANCERS = ("round_robin", "random", "least_connections", "power_of_two")
CLIENT = "client"  # the name links use for the outside world: client->gateway


class Strict(BaseModel):
    """Base of every spec model: unknown keys are errors, values are immutable once checked."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


