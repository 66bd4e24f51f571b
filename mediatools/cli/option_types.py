"""Option types that refuse what click lets through: click's FLOAT and FloatRange take ``nan``
and ``inf`` (nan compares false with every bound), which would ruin a mix or spin a poll loop."""
from __future__ import annotations

import math
from typing import Any

import click


class FiniteFloat(click.FloatRange):
    """A float within optional bounds, never nan or ±inf."""

    name = "float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        v = click.types.FLOAT.convert(value, param, ctx)
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return super().convert(v, param, ctx)


def finite(min: float | None = None, max: float | None = None, *, min_open: bool = False) -> FiniteFloat:
    return FiniteFloat(min, max, min_open=min_open)

