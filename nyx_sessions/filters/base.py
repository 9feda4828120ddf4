"""Filter protocols, base classes and their combinators (``&``, ``|``, ``~``).

A start filter decides whether a session may start; an update filter decides whether an
interaction may reach a live session's handlers. Both are objects with an async
``check(session, interaction) -> bool``. The base classes add the operators and
:meth:`~AbstractSessionFilter.rejection_message`, the text the user sees when the
filter says no (None keeps the manager's default text).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from cachetools import LRUCache

if TYPE_CHECKING:
    import discord

    from ..session import Session

__all__ = [
    "AbstractSessionFilter",
    "AbstractSessionStartFilter",
    "AbstractSessionUpdateFilter",
    "AllOf",
    "AnyOf",
    "Not",
    "SessionStartFilter",
    "SessionUpdateFilter",
    "rejection_message",
]


@runtime_checkable
class SessionStartFilter(Protocol):
    """Decides whether a session may start."""

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True to let ``session`` start from ``interaction``."""
        ...


@runtime_checkable
class SessionUpdateFilter(Protocol):
    """Decides whether an interaction may reach a live session's handlers."""

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True to let ``interaction`` reach ``session``."""
        ...


class AbstractSessionFilter(ABC):
    """Shared base of the filter base classes: the operators and the rejection text."""

    __slots__ = ()

    @abstractmethod
    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True to let the interaction through."""

    def rejection_message(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> str | None:
        """Return the text shown to a user this filter refused, or None for the default."""
        return None

    def __and__(self, other: AbstractSessionFilter) -> AllOf:
        return AllOf(self, other)

    def __or__(self, other: AbstractSessionFilter) -> AnyOf:
        return AnyOf(self, other)

    def __invert__(self) -> Not:
        return Not(self)


class AbstractSessionStartFilter(AbstractSessionFilter):
    """Base class for start filters; combine them with ``&``, ``|`` and ``~``."""

    __slots__ = ()


class AbstractSessionUpdateFilter(AbstractSessionFilter):
    """Base class for update filters; combine them with ``&``, ``|`` and ``~``."""

    __slots__ = ()


class _BothFilter(AbstractSessionStartFilter, AbstractSessionUpdateFilter):
    """A filter usable at start and on update (the combinators and most built-ins)."""

    __slots__ = ()


def rejection_message(
    filter_: object, session: Session[Any], interaction: discord.Interaction[Any]
) -> str | None:
    """Return ``filter_``'s rejection text, for filters with or without the method."""
    method = getattr(filter_, "rejection_message", None)
    if method is None:
        return None
    message: str | None = method(session, interaction)
    return message


class AllOf(_BothFilter):
    """Passes when every filter passes; checks stop at the first refusal."""

    __slots__ = ("_failed", "filters")

    def __init__(self, *filters: SessionUpdateFilter | SessionStartFilter) -> None:
        if not filters:
            raise ValueError("AllOf needs at least one filter")
        self.filters = _flatten(AllOf, filters)
        # Bounded: an AllOf nested in an AnyOf that passed is never asked for its text.
        self._failed: LRUCache[int, object] = LRUCache(maxsize=256)

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True when every filter passes."""
        for filter_ in self.filters:
            if not await filter_.check(session, interaction):
                # Remembered per interaction so that the text names the filter that failed,
                # even when other interactions are checked in between.
                self._failed[interaction.id] = filter_
                return False
        return True

    def rejection_message(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> str | None:
        """Return the rejection text of the filter that refused ``interaction``."""
        failed = self._failed.pop(interaction.id, None)
        if failed is None:
            return None
        return rejection_message(failed, session, interaction)

    def __repr__(self) -> str:
        return " & ".join(map(repr, self.filters)).join("()")


class AnyOf(_BothFilter):
    """Passes when at least one filter passes."""

    __slots__ = ("filters",)

    def __init__(self, *filters: SessionUpdateFilter | SessionStartFilter) -> None:
        if not filters:
            raise ValueError("AnyOf needs at least one filter")
        self.filters = _flatten(AnyOf, filters)

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True when any filter passes."""
        for filter_ in self.filters:
            if await filter_.check(session, interaction):
                return True
        return False

    def rejection_message(
        self, session: Session[Any], interaction: discord.Interaction[Any]
    ) -> str | None:
        """Return the first rejection text that the filters give."""
        for filter_ in self.filters:
            message = rejection_message(filter_, session, interaction)
            if message is not None:
                return message
        return None

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.filters)).join("()")


class Not(_BothFilter):
    """Passes when the wrapped filter refuses."""

    __slots__ = ("filter",)

    def __init__(self, filter_: SessionUpdateFilter | SessionStartFilter) -> None:
        self.filter = filter_

    async def check(self, session: Session[Any], interaction: discord.Interaction[Any]) -> bool:
        """Return True when the wrapped filter refuses."""
        return not await self.filter.check(session, interaction)

    def __repr__(self) -> str:
        return f"~{self.filter!r}"


def _flatten(
    kind: type[AllOf | AnyOf], filters: tuple[SessionUpdateFilter | SessionStartFilter, ...]
) -> tuple[SessionUpdateFilter | SessionStartFilter, ...]:
    flat: list[SessionUpdateFilter | SessionStartFilter] = []
    for filter_ in filters:
        if type(filter_) is kind:
            flat.extend(filter_.filters)
        else:
            flat.append(filter_)
    return tuple(flat)
