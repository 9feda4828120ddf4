"""The replay log of a :class:`~nyx_sessions.ConversationSession`, and its stand-ins.

With a persistent store a conversation keeps, in its record, what it received and what
its ``external`` calls returned. Each entry is a short msgpack-able list:

``["i", interaction_id, user_id, interaction_type, tokens, data]``
    An input: the tokens after the session id in its custom id (the action first) and
    the rest of the interaction's ``data`` (select values, modal fields, resolved ids).
``["x", result]``
    What an ``external`` call returned.
``["t"]``
    A wait that timed out.

On replay, a logged input comes back as a :class:`ReplayedInteraction`: it reads like
the interaction (``id``, ``user``, ``type``, ``data``) and answers nothing, so that no
interaction is answered twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import discord

__all__ = [
    "ASK",
    "Diverged",
    "LogFull",
    "Pending",
    "ReplayedInteraction",
    "ReplayedResponse",
    "input_entry",
]

ASK = "?"
"""The action of a modal shown by ``ask``: its custom id is ``ASK`` and the ask's number."""


class Diverged(BaseException):
    """The replayed code asked for something other than what the log holds.

    A ``BaseException``, like ``asyncio.CancelledError``: a flow's own ``except
    Exception`` must not swallow it and carry on from a state that does not exist.
    ``step`` is the entry of the log (from 1) where it happened.
    """

    def __init__(self, what: str, step: int) -> None:
        super().__init__(what, step)
        self.step = step


class LogFull(BaseException):
    """The log grew past the conversation's cap (a ``BaseException`` for that reason too)."""


def input_entry(interaction: discord.Interaction[Any], tokens: list[str]) -> list[Any]:
    """Return the log entry for ``interaction``, whose custom id holds ``tokens``."""
    data: Any = interaction.data or {}
    rest = {key: value for key, value in data.items() if key != "custom_id"}
    return ["i", interaction.id, interaction.user.id, interaction.type.value, tokens, rest]


class Pending:
    """What a suspended wait accepts: some actions, or the submit of one ``ask``."""

    __slots__ = ("actions", "ask", "timeout")

    def __init__(
        self, actions: tuple[str, ...] | None, ask: str | None, timeout: float | None
    ) -> None:
        self.actions = actions  # None: any action except a modal shown by ask
        self.ask = ask
        self.timeout = timeout

    def accepts(self, tokens: list[str]) -> bool:
        """Return whether an input with these tokens ends the wait."""
        if not tokens:
            return False
        if tokens[0] == ASK:
            return self.ask is not None and tokens[1:2] == [self.ask]
        return self.actions is None or tokens[0] in self.actions

    def describe(self) -> str:
        """Return what the wait accepts, for log lines."""
        asked = f"the submit of ask #{self.ask}" if self.ask is not None else ""
        if self.actions is None:
            return asked or "any action"
        names = ", ".join(repr(action) for action in self.actions)
        return f"{asked} or {names}" if asked and names else asked or names or "nothing"

    def __repr__(self) -> str:
        return f"<Pending {self.describe()}>"


class ReplayedResponse:
    """The ``response`` of a replayed interaction: every answer is skipped."""

    __slots__ = ("_done",)

    def __init__(self) -> None:
        self._done = False

    def is_done(self) -> bool:
        """Whether an answer was (pretended to be) given."""
        return self._done

    @property
    def type(self) -> None:
        """None: what the interaction was answered with is not logged."""
        return None

    async def send_message(self, *args: Any, **kwargs: Any) -> None:
        """Skip: the interaction was answered when it happened."""
        self._done = True

    async def edit_message(self, *args: Any, **kwargs: Any) -> None:
        """Skip: the interaction was answered when it happened."""
        self._done = True

    async def defer(self, *args: Any, **kwargs: Any) -> None:
        """Skip: the interaction was answered when it happened."""
        self._done = True

    async def send_modal(self, *args: Any, **kwargs: Any) -> None:
        """Skip: the modal was shown when it happened."""
        self._done = True


class ReplayedFollowup:
    """The ``followup`` webhook of a replayed interaction: sends nothing."""

    __slots__ = ()

    async def send(self, *args: Any, **kwargs: Any) -> None:
        """Skip: the follow-up was sent when it happened."""


_FOLLOWUP = ReplayedFollowup()


class ReplayedInteraction:
    """A stand-in for an interaction that a conversation received before a restart.

    It carries what the flow reads (``id``, ``user``, ``type``, ``data``, ``channel_id``,
    ``guild_id``) and answers nothing: ``response``, ``followup``,
    ``edit_original_response`` and ``delete_original_response`` do nothing, since the
    interaction was answered when it happened. ``message`` is None; edit the session's
    message by id (``session.message``) instead. ``user`` is a :class:`discord.Object`.
    """

    __slots__ = (
        "_build",
        "_data",
        "_response",
        "_rest",
        "_tokens",
        "_user_id",
        "channel_id",
        "guild_id",
        "id",
        "type",
    )

    def __init__(
        self,
        *,
        interaction_id: int,
        user_id: int,
        interaction_type: discord.InteractionType,
        tokens: list[str],
        rest: dict[str, Any],
        build: Callable[[list[str]], str],
        channel_id: int | None,
        guild_id: int | None,
    ) -> None:
        self.id = interaction_id
        self._user_id = user_id
        self.type = interaction_type
        self._tokens = tokens
        self._rest = rest
        self._build = build
        self._data: dict[str, Any] | None = None
        self.channel_id = channel_id
        self.guild_id = guild_id
        self._response: ReplayedResponse | None = None

    @property
    def response(self) -> ReplayedResponse:
        """Answers that do nothing (made when first used: most inputs are only passed by)."""
        if self._response is None:
            self._response = ReplayedResponse()
        return self._response

    @property
    def followup(self) -> ReplayedFollowup:
        """A webhook that sends nothing."""
        return _FOLLOWUP

    @property
    def user(self) -> discord.Object:
        """The user who sent it, by id."""
        return discord.Object(id=self._user_id)

    @property
    def data(self) -> dict[str, Any] | None:
        """The interaction's data as it came (the custom id rebuilt from its tokens)."""
        # Built when read: a replay passes most inputs by without a look at them.
        if self._data is None and self._tokens:
            self._data = {**self._rest, "custom_id": self._build(self._tokens)}
        return self._data

    @property
    def message(self) -> None:
        """None: the component's message is not kept in the log."""
        return None

    async def edit_original_response(self, *args: Any, **kwargs: Any) -> None:
        """Skip: the edit was made when it happened."""

    async def delete_original_response(self) -> None:
        """Skip: the deletion was made when it happened."""

    def __repr__(self) -> str:
        return f"<ReplayedInteraction id={self.id} type={self.type.name} user={self._user_id}>"
