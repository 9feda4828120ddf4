"""What the offline Discord knows and what it saw: people, places, messages, requests."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import discord

from nyx_sessions.testing.components import BUTTON, SELECT_TYPES, find_component, walk_components

if TYPE_CHECKING:
    from nyx_sessions.testing.payloads import Payload

__all__ = [
    "InteractionResult",
    "OfflineChannel",
    "OfflineMessage",
    "OfflineRole",
    "OfflineUser",
    "RecordedFile",
    "RecordedRequest",
    "RecordedResponse",
]

_EPHEMERAL = 1 << 6


@dataclass(slots=True, eq=False)
class OfflineUser:
    """A user of the offline Discord; a guild member unless made with ``add_user``.

    Attributes
    ----------
    id, name:
        The user's snowflake and username.
    role_ids:
        The ids of the member's roles (without @everyone).
    permissions:
        The permissions Discord reports for the member in a channel
        (``interaction.permissions``); ``None`` computes them from @everyone and the roles.
    is_member:
        Whether the user is a member of the offline guild.
    bot:
        Whether the user is a bot.
    """

    id: int
    name: str
    role_ids: list[int] = field(default_factory=list)
    permissions: discord.Permissions | None = None
    is_member: bool = True
    bot: bool = False

    @property
    def mention(self) -> str:
        """The ``<@id>`` mention of the user."""
        return f"<@{self.id}>"


@dataclass(slots=True, eq=False)
class OfflineRole:
    """A role of the offline guild; ``bot_id`` is set on a bot's managed role."""

    id: int
    name: str
    permissions: discord.Permissions
    position: int
    bot_id: int | None = None


@dataclass(slots=True, eq=False)
class OfflineChannel:
    """A channel: a guild channel, or a DM channel (``guild_id`` None) with ``recipient_id``."""

    id: int
    name: str
    type: discord.ChannelType
    position: int = 0
    guild_id: int | None = None
    recipient_id: int | None = None

    @property
    def mention(self) -> str:
        """The ``<#id>`` mention of the channel."""
        return f"<#{self.id}>"


_TEXT_DISPLAY = discord.ComponentType.text_display.value


def _embed_text(embed: Payload) -> list[str]:
    author = embed.get("author") or {}
    footer = embed.get("footer") or {}
    parts = [author.get("name"), embed.get("title"), embed.get("description")]
    parts.extend(f"{f.get('name')}: {f.get('value')}" for f in embed.get("fields") or [])
    parts.append(footer.get("text"))
    return [str(part) for part in parts if part]


@dataclass(slots=True, eq=False)
class OfflineMessage:
    """A message that the bot sent, kept up to date on edits and deletion.

    Attributes
    ----------
    payload:
        The message object as Discord currently returns it.
    history:
        The earlier versions of ``payload``, oldest first.
    deleted:
        Whether the message was deleted.
    interaction_id:
        The interaction whose response or followup created the message, if any.
    """

    payload: Payload
    history: list[Payload] = field(default_factory=list)
    deleted: bool = False
    interaction_id: int | None = None

    @property
    def id(self) -> int:
        """The message id."""
        return int(self.payload["id"])

    @property
    def channel_id(self) -> int:
        """The id of the channel the message is in."""
        return int(self.payload["channel_id"])

    @property
    def content(self) -> str:
        """The text content."""
        return str(self.payload.get("content") or "")

    @property
    def text(self) -> str:
        """Everything the message says, one part a line.

        The content, then each embed's author, title, description, fields (``name:
        value``) and footer, then every Components V2 text display in display order
        (inside containers and sections too). A Components V2 message has no content;
        this is where its text is.
        """
        parts = [self.content] if self.content else []
        for embed in self.embeds:
            parts.extend(_embed_text(embed))
        parts.extend(
            str(component.get("content") or "")
            for component in walk_components(self.components)
            if component.get("type") == _TEXT_DISPLAY
        )
        return "\n".join(part for part in parts if part)

    @property
    def embeds(self) -> list[Payload]:
        """The raw embed objects."""
        return list(self.payload.get("embeds") or [])

    @property
    def components(self) -> list[Payload]:
        """The raw top-level component objects (action rows, containers, ...)."""
        return list(self.payload.get("components") or [])

    @property
    def buttons(self) -> list[Payload]:
        """Every button, in display order."""
        return [c for c in walk_components(self.components) if c.get("type") == BUTTON]

    @property
    def selects(self) -> list[Payload]:
        """Every select menu, in display order."""
        return [c for c in walk_components(self.components) if c.get("type") in SELECT_TYPES]

    @property
    def custom_ids(self) -> list[str]:
        """The custom ids of every interactive component."""
        return [c["custom_id"] for c in walk_components(self.components) if "custom_id" in c]

    @property
    def flags(self) -> discord.MessageFlags:
        """The message flags."""
        flags = discord.MessageFlags()
        flags.value = int(self.payload.get("flags") or 0)
        return flags

    @property
    def ephemeral(self) -> bool:
        """Whether only the user who interacted sees the message."""
        return bool(int(self.payload.get("flags") or 0) & _EPHEMERAL)

    @property
    def edits(self) -> int:
        """How many times the message was edited."""
        return len(self.history)

    def find(self, *, label: str | None = None, custom_id: str | None = None) -> Payload:
        """Return the one component with this label (or placeholder) and/or custom id.

        Raises
        ------
        LookupError
            No component matches, or several do.
        """
        return find_component(self.components, label=label, custom_id=custom_id)

    def __repr__(self) -> str:
        state = " deleted" if self.deleted else ""
        return (
            f"<OfflineMessage id={self.id} content={self.content!r} "
            f"components={len(self.custom_ids)} edits={self.edits}{state}>"
        )


@dataclass(slots=True, frozen=True)
class RecordedFile:
    """A file uploaded in a multipart request."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


@dataclass(slots=True)
class RecordedRequest:
    """One REST call that reached the offline Discord.

    Attributes
    ----------
    method:
        The HTTP method.
    path:
        The path below ``/api/v10``, e.g. ``/channels/1/messages``.
    route:
        The route template, e.g. ``/channels/{channel_id}/messages``; ``None`` for
        routes the offline Discord does not know.
    query:
        The query parameters.
    json:
        The JSON body (``payload_json`` of a multipart body), or ``None``.
    files:
        The files of a multipart body.
    time:
        When the request arrived, by the offline Discord's clock.
    status:
        The HTTP status of the answer.
    response:
        The JSON answer, or ``None``.
    """

    method: str
    path: str
    route: str | None
    query: dict[str, str]
    json: Any
    files: list[RecordedFile]
    time: float
    status: int = 0
    response: Any = None

    def __repr__(self) -> str:
        return f"<RecordedRequest {self.method} {self.path} -> {self.status}>"


@dataclass(slots=True, frozen=True)
class RecordedResponse:
    """The bot's acknowledgement of an interaction: the callback type and data."""

    type: discord.InteractionResponseType
    data: Payload | None
    time: float


_SETTLE_TURNS = 10


class InteractionResult:
    """One interaction fed to the bot, and what became of it.

    Attributes
    ----------
    payload:
        The ``INTERACTION_CREATE`` payload that was fed.
    fed_at:
        When it was fed, by the offline Discord's clock.
    response:
        The bot's acknowledgement, or ``None`` while unanswered.
    message:
        The message the response created (types 4 and 5) or updates (types 6 and 7,
        the message of the component), if any.
    source_message:
        The message whose component was used, if any.
    followups:
        The followup messages sent with the interaction's token.
    """

    __slots__ = (
        "_answered",
        "_interaction",
        "fed_at",
        "followups",
        "message",
        "payload",
        "response",
        "source_message",
    )

    def __init__(
        self, payload: Payload, *, fed_at: float, source_message: OfflineMessage | None
    ) -> None:
        self.payload = payload
        self.fed_at = fed_at
        self.source_message = source_message
        self.response: RecordedResponse | None = None
        self.message: OfflineMessage | None = None
        self.followups: list[OfflineMessage] = []
        self._interaction: discord.Interaction[discord.Client] | None = None
        self._answered = asyncio.Event()

    @property
    def id(self) -> int:
        """The interaction id."""
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        """The interaction token."""
        return str(self.payload["token"])

    @property
    def interaction(self) -> discord.Interaction[discord.Client]:
        """The :class:`discord.Interaction` that discord.py made of the payload."""
        if self._interaction is None:
            raise RuntimeError("the payload has not been parsed by discord.py yet")
        return self._interaction

    @property
    def answered(self) -> bool:
        """Whether the bot has acknowledged the interaction."""
        return self.response is not None

    @property
    def modal(self) -> Payload | None:
        """The modal (``custom_id``, ``title``, ``components``) of a type-9 response."""
        if self.response is None or self.response.type is not discord.InteractionResponseType.modal:
            return None
        return self.response.data

    @property
    def ephemeral(self) -> bool:
        """Whether the response message is ephemeral."""
        if self.message is not None and self.message is not self.source_message:
            return self.message.ephemeral
        data = self.response.data if self.response is not None else None
        return bool(data and int(data.get("flags") or 0) & _EPHEMERAL)

    def _set_interaction(self, interaction: discord.Interaction[discord.Client]) -> None:
        self._interaction = interaction

    def _acknowledge(self, response: RecordedResponse) -> None:
        self.response = response
        self._answered.set()

    async def wait_message(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline per call reads best in tests
    ) -> OfflineMessage:
        """Wait until the bot answers, and return the message its answer created or updated.

        Raises
        ------
        TimeoutError
            The bot did not answer within ``timeout`` seconds.
        LookupError
            The answer has no message (a modal, or a deferral with nothing sent yet).
        """
        await self.wait_answered(timeout)
        if self.message is None:
            kind = self.response.type.name if self.response is not None else "none"
            raise LookupError(f"interaction {self.id} was answered with no message ({kind})")
        return self.message

    async def wait_answered(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109 - a deadline per call reads best in tests
    ) -> RecordedResponse:
        """Wait until the bot acknowledges the interaction and return the response.

        Raises
        ------
        TimeoutError
            The bot did not answer within ``timeout`` seconds.
        """
        try:
            await asyncio.wait_for(self._answered.wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"interaction {self.id} was not answered within {timeout} s"
            ) from None
        # Discord recorded the answer when the request came in; the bot goes on (stores
        # the view it sent, say) only once the response has reached it, a few loop turns
        # later. Let it get there, so that the next step of a test sees what it did.
        for _ in range(_SETTLE_TURNS):
            await asyncio.sleep(0)
        assert self.response is not None
        return self.response

    def __repr__(self) -> str:
        answer = self.response.type.name if self.response is not None else "unanswered"
        return f"<InteractionResult id={self.id} type={self.payload['type']} {answer}>"
