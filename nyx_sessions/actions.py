"""Actions: one session method per component, picked by the first token of its custom id.

``@action("inc")`` marks a method as the handler of every button, select menu or modal
whose custom id reads ``<prefix>:<session id>:inc[:token...]``; the tokens after the
action's name are passed to it as positional ``str`` arguments. The table from action
name to method name is built once per class, when the class is made, so that dispatch
is one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

__all__ = ["ACTION_ATTRIBUTE", "action", "collect_actions"]

ACTION_ATTRIBUTE = "__nyx_action__"
"""The attribute that :func:`action` sets on the function it marks."""

HandlerT = TypeVar("HandlerT", bound=Callable[..., Awaitable[bool | None]])


def action(name: str) -> Callable[[HandlerT], HandlerT]:
    """Mark a session method as the handler of the action ``name``.

    The method is called as ``await method(interaction, *tokens)`` for every component
    or modal interaction whose custom id names ``name`` first after the session id
    (build one with :meth:`AbstractSession.action_id`). Returning nothing (None) or True
    refreshes the session's TTL, as every interaction restarts a ``discord.ui.View``'s
    timeout; returning False leaves the deadline where it is.

    Parameters
    ----------
    name:
        The action's name: a non-empty custom-id token. Short names leave more of
        the 100 characters of a custom id to the arguments.

    Examples
    --------
    >>> class Pager(AbstractSession[None]):  # doctest: +SKIP
    ...     @action("page")
    ...     async def page(self, interaction: discord.Interaction, number: str) -> None:
    ...         await self.edit(interaction, content=f"page {number}")
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid action name {name!r}: use a non-empty string")

    def mark(handler: HandlerT) -> HandlerT:
        setattr(handler, ACTION_ATTRIBUTE, name)
        return handler

    return mark


def collect_actions(cls: type[Any]) -> dict[str, str]:
    """Return ``cls``'s actions: action name -> method name, subclasses overriding bases.

    Raises
    ------
    TypeError
        Two methods of one class claim the same action.
    """
    table: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        own: dict[str, str] = {}
        for attribute, value in vars(klass).items():
            name = getattr(value, ACTION_ATTRIBUTE, None)
            if not isinstance(name, str):
                continue
            if name in own:
                raise TypeError(
                    f"{klass.__qualname__}.{attribute} and .{own[name]} both handle action {name!r}"
                )
            own[name] = attribute
        table.update(own)
    return table
