"""What the manager needs of a session store: :class:`SessionStore` and :class:`SessionRecord`.

A store keeps one record per live session, a deadline index for expiry, and a lease per
session so that updates of one session run one at a time across processes. Each
operation is atomic in its backend; compound logic (restore, expire, end exactly once)
stays in the manager.

Revisions fence stale writers: every :meth:`SessionStore.commit` names the revision it
read, and a commit whose revision is no longer current is refused, so a process whose
lease ran out while it was paused cannot overwrite a newer state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from ..clock import Clock
    from ..end import SessionEndData

__all__ = ["InspectableStore", "SessionRecord", "SessionStore"]


@dataclass(slots=True)
class SessionRecord:
    """The persisted state of one session.

    Attributes
    ----------
    session_id, session_type:
        The session's id and the registered name of its class.
    owner_id, guild_id, channel_id, message_id:
        Where the session lives; ``message_id`` lets it edit its message after a restart.
    data, data_version:
        The session's :attr:`~nyx_sessions.AbstractSession.data` and its layout version.
    created_at:
        When the session started, in seconds since the epoch.
    ttl:
        The sliding TTL in seconds, or None.
    deadline:
        When the session expires (the earlier of the sliding TTL and the hard
        deadline), or None for never.
    hard_deadline:
        The absolute cap from ``max_lifetime``, or None.
    revision:
        Bumped by every commit; 0 before the record is created.
    result:
        The session's result so far.
    recent:
        The ids of the last interactions a shared store's session served, so that an
        interaction delivered to two processes is served once.
    """

    session_id: str
    session_type: str
    owner_id: int
    guild_id: int | None = None
    channel_id: int | None = None
    message_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    data_version: int = 1
    created_at: float = 0.0
    ttl: float | None = None
    deadline: float | None = None
    hard_deadline: float | None = None
    revision: int = 0
    result: Any = None
    recent: tuple[int, ...] = ()


@runtime_checkable
class SessionStore(Protocol):
    """A backend for session records, deadlines, leases and end notifications.

    Attributes
    ----------
    persistent:
        Records outlive the process (sessions can be restored after a restart).
    shared:
        Several processes may use the store at once (leases and end notifications
        cross process boundaries).

    The manager keeps at most ``store_concurrency`` calls of a shared store in flight
    at once, so a store built on a connection pool never runs it dry.
    """

    persistent: bool
    shared: bool

    def use_clock(self, clock: Clock) -> None:
        """Measure deadlines with ``clock``: the manager passes its own before opening."""
        ...

    async def open(self) -> None:
        """Prepare the store (connect, load scripts); called once by the manager."""
        ...

    async def aclose(self) -> None:
        """Release what the store opened itself; idempotent."""
        ...

    async def create(self, record: SessionRecord, *, lease_owner: str, lease: float) -> None:
        """Insert a new record at revision 1, holding its lease for ``lease`` seconds.

        Sets ``record.revision`` to 1. Raises
        :class:`~nyx_sessions.errors.StoreError` when the id exists.
        """
        ...

    async def get(self, session_id: str) -> SessionRecord | None:
        """Load a record without taking its lease (for inspection), or None."""
        ...

    async def acquire(
        self, session_id: str, *, lease_owner: str, lease: float, wait: float
    ) -> SessionRecord | None:
        """Take the session's lease, waiting up to ``wait`` seconds, and load its record.

        Returns None (and holds no lease) when there is no record. Raises
        :class:`~nyx_sessions.errors.LeaseTimeoutError` when the lease stayed taken,
        and a :class:`~nyx_sessions.errors.RecordError` when the record cannot be
        decoded (the store sets it aside first).
        """
        ...

    async def commit(self, record: SessionRecord, *, lease_owner: str, release: bool) -> int:
        """Save ``record`` if its revision is still current and the lease is ours.

        Bumps and returns the revision (also set on ``record``) and updates the
        deadline index. Releases the lease when ``release`` is true. Raises
        :class:`~nyx_sessions.errors.RevisionConflictError` otherwise.
        """
        ...

    async def release(self, session_id: str, *, lease_owner: str) -> None:
        """Give the lease back if ``lease_owner`` still holds it."""
        ...

    async def remove(self, session_id: str, *, end: SessionEndData | None = None) -> bool:
        """Delete the record, its deadline and its lease; True when this call deleted it.

        With ``end``, a shared store keeps that end for a while (see :meth:`ended`), in
        the same atomic step, so that a process which misses the end notice still learns
        how the session ended when it next looks.
        """
        ...

    async def ended(self, session_id: str) -> SessionEndData | None:
        """Return how a recently removed session ended, if the store still knows; or None."""
        ...

    async def claim_expired(self, now: float, *, limit: int, hold: float) -> list[str]:
        """Return up to ``limit`` ids whose deadline is at or before ``now``.

        The claim moves each deadline to ``now + hold`` atomically, so no other process
        claims the same session while this one expires it, and a process that crashes
        mid-way leaves it to be claimed again.
        """
        ...

    async def count_by_type(self) -> dict[str, int]:
        """Return the number of records per session type."""
        ...

    async def publish_end(self, end: SessionEndData) -> None:
        """Tell every process sharing the store that a session ended.

        A store retries a transient failure a few times before it raises
        :class:`~nyx_sessions.errors.StoreUnavailableError`.
        """
        ...

    def on_end(self, callback: Callable[[SessionEndData], None] | None) -> None:
        """Call ``callback`` for every end published by another process (None to stop)."""
        ...


@runtime_checkable
class InspectableStore(Protocol):
    """An optional capability of a store: listing its records, for inspection tools.

    Not part of :class:`SessionStore`: the manager never lists sessions. Both built-in
    stores have it; ``isinstance(store, InspectableStore)`` tells whether another does.
    """

    def scan(
        self, *, session_type: str | None = None, limit: int | None = None
    ) -> AsyncIterator[SessionRecord]:
        """Yield the stored records, in no particular order, without taking leases.

        Parameters
        ----------
        session_type:
            Only records of this session type; all of them when None.
        limit:
            Stop after this many records; no limit when None.
        """
        ...
