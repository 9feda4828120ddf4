"""ConversationSession: a multi-step flow written as one coroutine, kept alive by replay."""

from __future__ import annotations

import asyncio
import copy
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast, overload

import discord
import msgpack

from ._types import ResultT
from .conversation_flow import (
    KEY,
    TIMED_OUT,
    Flow,
    append,
    describe,
    name_of,
    new_state,
    stand_in,
)
from .conversation_log import ASK, Diverged, LogFull, Pending, input_entry
from .end import EndCode
from .errors import ConversationTimeout
from .inputs import ModalValues, modal_values
from .responders import answer_ephemeral
from .session import AbstractSession

if TYPE_CHECKING:
    from typing import Self

__all__ = ["ConversationSession"]

_log = logging.getLogger("nyx_sessions")
T = TypeVar("T")
_APPLICATION_COMMAND = discord.InteractionType.application_command


class ConversationSession(AbstractSession[ResultT]):
    """A session whose steps are one linear coroutine, :meth:`converse`.

    ``converse()`` sends the first message through :attr:`start_interaction`, then
    awaits the user's inputs with :meth:`wait_for` and :meth:`ask`; what it returns is
    the session's result, and the session ends ENDED.

    In memory the coroutine stays suspended between inputs. With a persistent store it
    is replayed after a restart, or when another process gets the next click: it runs
    again from the top, each wait returns its logged input at once (a
    :class:`~nyx_sessions.conversation_log.ReplayedInteraction` that answers nothing),
    :meth:`external` returns its logged result, until the new input reaches the wait
    that was pending. So the flow must be deterministic: anything that may differ
    between runs (time, randomness, a database, HTTP) goes through :meth:`external`,
    and anything it sends without an interaction goes through :meth:`edit_message`.

    Attributes
    ----------
    conversation_version:
        The version of the flow's code; raise it when a change would replay old logs
        wrongly, and override :meth:`migrate_log` to carry them over (refused by default).
    idle_ttl:
        Seconds a wait without a timeout may last before the session expires; None for ever.
    max_log_size:
        The most bytes of log kept in the record; past it the conversation ends with an
        error. Long loops call :meth:`checkpoint` to cut the log.
    not_now_text, diverged_text, too_long_text, outdated_text:
        What the user is told when a click is not awaited, when the code no longer
        matches the log, when the log is full, and when the log is of another version.
    """

    conversation_version: ClassVar[int] = 1
    idle_ttl: float | None = 900.0
    max_log_size: ClassVar[int] = 64_000
    not_now_text: ClassVar[str] = "That is not something you can do right now."
    diverged_text: ClassVar[str] = (
        "This conversation cannot go on: the bot was updated since it started. Please start again."
    )
    too_long_text: ClassVar[str] = "This conversation ran too long to go on. Please start again."
    outdated_text: ClassVar[str] = diverged_text

    def __init__(
        self, interaction: discord.Interaction[Any], *, session_id: str | None = None
    ) -> None:
        super().__init__(interaction, session_id=session_id)
        self._flow: Flow | None = None

    @classmethod
    def restore(cls, **kwargs: Any) -> Self:
        """Rebuild a conversation from stored state; it is replayed on its next input."""
        self = cast("Self", super().restore(**kwargs))
        self._flow = None
        return self

    # -- what the author writes and calls ------------------------------------------------

    async def converse(self) -> ResultT:
        """Run the flow: send the first message, await the inputs, return the result."""
        raise NotImplementedError(f"{type(self).__qualname__} must implement converse()")

    async def wait_for(
        self,
        *actions: str,
        timeout: float | None = None,  # noqa: ASYNC109 - a wait's own limit
    ) -> discord.Interaction[Any]:
        """Return the next interaction on this session whose action is one of ``actions``.

        Any action when none is given. Interactions for other actions are answered
        ("not now") and dropped.

        Raises
        ------
        ConversationTimeout
            ``timeout`` seconds passed without one.
        """
        return await self._wait(Pending(actions or None, None, timeout))

    async def ask(
        self,
        interaction: discord.Interaction[Any],
        modal: discord.ui.Modal,
        timeout: float | None = None,  # noqa: ASYNC109 - a wait's own limit
    ) -> tuple[discord.Interaction[Any], ModalValues]:
        """Answer ``interaction`` with ``modal``; return the submit and its values.

        The modal's custom id is set to one of this session's. A user who closes the
        modal can click the same component again: the modal opens again.

        Raises
        ------
        ConversationTimeout
            ``timeout`` seconds passed without a submit.
        """
        flow = self._running()
        number = str(flow.asks)
        flow.asks += 1
        modal.custom_id = self.custom_id.push(ASK).push(number).build()
        # A click that opened the modal opens it again; a slash command has no component.
        tokens = [] if interaction.type is _APPLICATION_COMMAND else self.action_of(interaction)
        reopen = tuple(tokens[:1])
        await interaction.response.send_modal(modal)
        while True:
            submit = await self._wait(Pending(reopen, number, timeout))
            if submit.type is discord.InteractionType.modal_submit:
                return submit, modal_values(submit)
            await submit.response.send_modal(modal)  # closed, and asked for again

    @overload
    async def external(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T: ...

    @overload
    async def external(self, fn: Callable[..., T], *args: Any) -> T: ...

    async def external(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` once and log its result; on replay, return the logged result.

        For everything that may differ between runs or must not happen twice: the
        clock, randomness, a database, HTTP. The result must be msgpack-able (str, int,
        float, bool, None, bytes, lists and dicts of them) when the store is persistent.
        """
        flow = self._running()
        entry = flow.next_logged()
        if entry is not None:
            if entry[0] != "x":
                what = f"an external call to {name_of(fn)} where the log has {describe(entry)}"
                raise Diverged(what, flow.cursor)
            return entry[1]
        result = fn(*args)
        if inspect.isawaitable(result):
            result = await result
        if self._persistent:
            try:
                msgpack.packb(result)
            except (TypeError, ValueError) as error:
                raise TypeError(
                    f"external {name_of(fn)} returned {type(result).__name__}, which a "
                    f"persistent store cannot keep: {error}"
                ) from error
            self._append(flow, ["x", result])
        return result

    async def now(self) -> float:
        """Return the manager's clock time (seconds since the epoch), logged."""
        assert self.manager is not None
        return await self.external(self.manager.clock.now)

    async def random(self) -> float:
        """Return a random float in [0, 1), logged."""
        return await self.external(random.random)

    def checkpoint(self) -> None:
        """Cut the log: keep :attr:`data` as it is now and forget every input before.

        After a restart ``converse()`` runs from the top with :attr:`data` as it was at
        the last checkpoint, and replays only what came after it. So the code before the
        checkpoint must reach it again from :attr:`data` alone, without waits or
        externals (e.g. ``if "name" not in self.data: ...``). Does nothing while
        replaying, and in memory, where there is no log.
        """
        flow = self._running()
        if not self._persistent or flow.replay:
            return
        state = self.data[KEY]
        state.update(log=[], size=0, asks=flow.asks, base=self._author_data())

    @property
    def replaying(self) -> bool:
        """Whether the flow is re-running inputs it received before a restart."""
        return self._flow is not None and self._flow.replay

    async def edit_message(self, **fields: Any) -> None:
        """Edit the session's message by id, except while replaying (it was edited then)."""
        message = self.message
        if message is not None and not self.replaying:
            await message.edit(**fields)

    @classmethod
    def migrate_log(cls, state: dict[str, Any], from_version: int) -> dict[str, Any] | None:
        """Carry over a log written by ``conversation_version`` ``from_version``, or refuse.

        ``state`` holds ``log`` (see :mod:`nyx_sessions.conversation_log`) and ``base``
        (the data at the start or at the last checkpoint). Return the state to replay,
        or None to end the conversation with :attr:`outdated_text` (the default).
        """
        return None

    # -- the session's hooks ---------------------------------------------------------------

    @property
    def ttl(self) -> float | None:
        """Seconds until the pending wait times out; :attr:`idle_ttl` without a timeout.

        Setting it sets :attr:`idle_ttl`.
        """
        state = self.data.get(KEY)
        due = state.get("due") if state is not None else None
        if due is None or self.manager is None:
            return self.idle_ttl
        return max(float(due) - self.manager.clock.now(), 0.0)

    @ttl.setter
    def ttl(self, value: float | None) -> None:
        self.idle_ttl = value

    async def start(self) -> None:
        """Run :meth:`converse` up to its first wait."""
        base = self._author_data() if self._persistent else None
        self.data[KEY] = new_state(self.conversation_version, base)
        flow = self._launch(Flow([], 0, 0, replay=False))
        await flow.suspended
        await self._settle(flow, None, timing_out=False)

    async def update(self, interaction: discord.Interaction[Any]) -> bool:
        """Hand ``interaction`` to the pending wait; return once the flow waits again."""
        flow = await self._ready(interaction)
        if flow is None:
            return False
        tokens = self.action_of(interaction)
        pending = flow.pending
        if pending is None or not pending.accepts(tokens):
            await answer_ephemeral(interaction, self.not_now_text)
            return False  # dropped: the flow and its deadline stay as they are
        if self._persistent:
            try:
                self._append(flow, input_entry(interaction, tokens))
            except LogFull as error:
                await self._fail(interaction, self.too_long_text, str(error))
                return False
        return await self._resume(flow, interaction, interaction)

    async def on_timeout(self) -> bool:
        """Raise :class:`~nyx_sessions.ConversationTimeout` in the wait that ran out of time.

        Returns
        -------
        bool
            False when nothing waits with a timeout, or the flow lets the timeout
            escape: the session expires. True when the flow goes on or has ended.
        """
        flow = await self._ready(None)
        if flow is None:
            return True  # ended already, for the reason given
        assert self.manager is not None
        due = self.data[KEY]["due"]
        if flow.pending is None or due is None:
            return False
        if self.manager.clock.now() < due:
            return True  # the session's deadline came before the wait's
        if self._persistent:
            try:
                self._append(flow, ["t"])
            except LogFull as error:
                await self._fail(None, self.too_long_text, str(error))
                return True
        return await self._resume(flow, TIMED_OUT, None)

    async def end(self) -> None:
        """Stop the flow if it is still suspended."""
        self._cancel()

    # -- the engine ----------------------------------------------------------------------

    @property
    def _persistent(self) -> bool:
        return self.manager is not None and self.manager.store.persistent

    def _running(self) -> Flow:
        flow = self._flow
        if flow is None or flow.outcome is not None:
            raise RuntimeError("wait_for, ask, external and checkpoint work inside converse()")
        return flow

    def _author_data(self) -> dict[str, Any]:
        return copy.deepcopy({key: value for key, value in self.data.items() if key != KEY})

    def _step(self) -> int:
        state = self.data.get(KEY)
        return int(state["seq"]) if state is not None else 0

    def _append(self, flow: Flow, entry: list[Any]) -> None:
        flow.seq = append(self.data[KEY], entry, self.max_log_size)

    def _launch(self, flow: Flow) -> Flow:
        if self._flow is None:
            # Ended in any way (also a shutdown that leaves the session in the store):
            # the suspended coroutine goes with it.
            self.end_promise.add_done_callback(lambda _: self._cancel())
        self._cancel()
        self._flow = flow
        flow.task = asyncio.get_running_loop().create_task(
            flow.run(self.converse), name=f"nyx-sessions-conversation-{self.id}"
        )
        return flow

    def _cancel(self) -> None:
        flow = self._flow
        if flow is not None and flow.task is not None and not flow.task.done():
            flow.task.cancel()

    async def _ready(self, interaction: discord.Interaction[Any] | None) -> Flow | None:
        """Return the flow suspended at its pending wait, replaying the log if needed."""
        flow, state = self._flow, self.data.get(KEY)
        current = flow is not None and flow.outcome is None and state is not None
        if current and (not self._persistent or flow.seq == state["seq"]):  # type: ignore[union-attr, index]
            return flow
        if state is None or not self._persistent:
            await self._fail(interaction, self.outdated_text, "it has no conversation state")
            return None
        version = state["v"]
        if version != self.conversation_version:
            migrated = type(self).migrate_log(copy.deepcopy(state), version)
            if migrated is None:
                reason = (
                    f"its log is of conversation_version {version}, the code's is "
                    f"{self.conversation_version} (see migrate_log)"
                )
                await self._fail(interaction, self.outdated_text, reason)
                return None
            state = self.data[KEY] = {**migrated, "v": self.conversation_version}
        for key in [key for key in self.data if key != KEY]:
            del self.data[key]
        self.data.update(copy.deepcopy(state["base"] or {}))
        # What converse() sent its first message with: answered long ago.
        self.start_interaction = self._stand_in(["i", 0, self.owner_id, 2, [], {}])
        flow = self._launch(Flow(list(state["log"]), state["seq"], state["asks"], replay=True))
        await flow.suspended
        if flow.outcome is not None:
            await self._settle(flow, interaction, timing_out=False)
            return None
        return flow

    async def _wait(self, pending: Pending) -> discord.Interaction[Any]:
        flow = self._running()
        entry = flow.next_logged()
        if entry is not None:
            if entry[0] == "t":
                raise ConversationTimeout(f"no input within {pending.timeout} seconds")
            if entry[0] != "i" or not pending.accepts(entry[4]):
                what = f"a wait for {pending.describe()} where the log has {describe(entry)}"
                raise Diverged(what, flow.cursor)
            replayed: discord.Interaction[Any] = self._stand_in(entry)
            return replayed
        state = self.data[KEY]
        if flow.replay:
            # The wait that was pending: it keeps the deadline it had.
            flow.replay = False
            self.start_interaction = None  # the stand-in of the replay
        else:
            assert self.manager is not None
            timeout = pending.timeout
            state["due"] = None if timeout is None else self.manager.clock.now() + timeout
        woken: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        flow.pending, flow.woken = pending, woken
        flow.signal()
        try:
            item = await woken
        finally:
            flow.pending = flow.woken = None
            state["due"] = None
        if item is TIMED_OUT:
            raise ConversationTimeout(f"no input within {pending.timeout} seconds")
        return cast("discord.Interaction[Any]", item)

    def _stand_in(self, entry: list[Any]) -> Any:
        return stand_in(entry, self._build_custom_id, self.channel_id, self.guild_id)

    def _build_custom_id(self, tokens: list[str]) -> str:
        builder = self.custom_id
        for token in tokens:
            builder.push(token)
        return builder.build()

    async def _resume(
        self, flow: Flow, item: Any, interaction: discord.Interaction[Any] | None
    ) -> bool:
        woken = flow.woken
        assert woken is not None
        flow.suspended = asyncio.get_running_loop().create_future()
        woken.set_result(item)
        await flow.suspended
        return await self._settle(flow, interaction, timing_out=item is TIMED_OUT)

    async def _settle(
        self, flow: Flow, interaction: discord.Interaction[Any] | None, *, timing_out: bool
    ) -> bool:
        """Act on where the flow stopped; return whether the session goes on (refresh)."""
        if flow.outcome is None:
            return True  # waiting again
        kind, value = flow.outcome
        if kind == "result":
            await self.stop(result=value)
            return timing_out  # from on_timeout: "not expired", the stop ends it
        if isinstance(value, Diverged):
            reason = f"it diverged from its log: {value.args[0]}"
            await self._fail(interaction, self.diverged_text, reason, value.step)
        elif isinstance(value, LogFull):
            await self._fail(interaction, self.too_long_text, str(value))
        elif isinstance(value, ConversationTimeout):
            if timing_out:
                return False  # the manager expires the session
            assert self.manager is not None
            await self.manager.end(self, code=EndCode.EXPIRED, reason="timed out")
            return False
        elif isinstance(value, Exception):
            assert self.manager is not None
            if flow is not self._flow or self.end_code is not None:
                return False
            await self.manager.end(self, code=EndCode.ERROR, reason=f"converse() raised {value!r}")
            if timing_out:  # no interaction to answer: logged here, ended with ERROR
                _log.error(
                    "Conversation %s (%s) failed", self.id, self.session_type, exc_info=value
                )
                return True
            raise value  # the manager logs it, emits ERROR and answers the interaction
        return timing_out

    async def _fail(
        self,
        interaction: discord.Interaction[Any] | None,
        text: str,
        reason: str,
        step: int | None = None,
    ) -> None:
        """End with ERROR: the user is told ``text``, the log says ``reason`` and the step.

        ``step`` counts the log's entries from 1 (the step that diverged); by default,
        the entries the conversation has logged.
        """
        step = self._step() if step is None else step
        _log.error(
            "Conversation %s (%s) ends at step %s: %s", self.id, self.session_type, step, reason
        )
        if interaction is not None:
            await answer_ephemeral(interaction, text)
        assert self.manager is not None
        await self.manager.end(self, code=EndCode.ERROR, reason=f"step {step}: {reason}")
