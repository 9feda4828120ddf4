"""Type variables and aliases shared by the package."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["Listener", "ResultT", "ResultT_co"]

ResultT = TypeVar("ResultT")
ResultT_co = TypeVar("ResultT_co", covariant=True)

Listener = Callable[..., Coroutine[Any, Any, Any]]
"""An event listener: a coroutine function."""
