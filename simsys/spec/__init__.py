"""The spec layer: units, distributions, the typed scenario model and the YAML loader."""

from .distributions import Distribution
from .load import apply_overrides, load, validate
from .model import Scenario

__all__ = ["Distribution", "Scenario", "apply_overrides", "load", "validate"]
