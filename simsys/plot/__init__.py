"""Plots (matplotlib only). Each function takes a Result and ``ax=`` and returns the Axes."""
from .result_plots import ResultPlots

__all__ = ["ResultPlots"]
