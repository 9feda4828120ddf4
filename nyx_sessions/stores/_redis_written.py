"""The records that a Redis store wrote last, handed back instead of read again.

An update reads a record (acquire) and writes it back (commit). Read right after this
store's own commit of it, the record in Redis is the one this process already holds, so
it need not travel and be decoded again: :class:`WrittenRecords` keeps, per session, the
record object of this store's last commit, the number of that write (its token in Redis
is the store's instance id and that number) and the type index expiry it sent.

- ``acquire`` names that write (:meth:`WrittenRecords.known`); when Redis still holds it,
  the reply has no body and the record is handed back (:meth:`handed_back`), marked so
  that it is handed back once at most: the caller may change it and never commit it (a
  refused interaction, a cancelled task), and the next acquire reads it again then.
- ``commit`` takes the entry out (:meth:`committing`): the commit of the record handed
  back needs no type index update when its expiry did not change (that write sent it);
  a successful commit keeps the record again (:meth:`committed`).
- ``release``, ``remove`` and any other outcome of an acquire forget it.

As the memory store does, the record handed back is the very object that was committed.
At most :data:`MAX_KEPT` records are kept (the oldest go first: they are read again, that
is all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeAlias

if TYPE_CHECKING:
    from .base import SessionRecord

__all__ = ["MAX_KEPT", "WrittenRecords"]

MAX_KEPT: Final = 16_384

_Entry: TypeAlias = "tuple[int | None, SessionRecord, bytes]"
"""Write number (None once handed back), the record, the type index expiry sent."""


class WrittenRecords:
    """The record of this store's last commit of each session, until it changes hands."""

    __slots__ = ("_entries", "max_kept")

    def __init__(self, max_kept: int = MAX_KEPT) -> None:
        self._entries: dict[str, _Entry] = {}
        self.max_kept = max_kept

    def known(self, session_id: str) -> int | None:
        """Return the number of the write whose record can be handed back, or None."""
        entry = self._entries.get(session_id)
        return None if entry is None else entry[0]

    def handed_back(self, session_id: str, revision: bytes) -> SessionRecord | None:
        """Hand back the record of the known write (Redis holds it at ``revision``).

        None when there is none (or it is not at that revision, which cannot happen).
        """
        entry = self._entries.get(session_id)
        if entry is None or entry[0] is None or str(entry[1].revision).encode() != revision:
            return None
        self._entries[session_id] = (None, entry[1], entry[2])
        return entry[1]

    def committing(self, session_id: str, record: SessionRecord, index_expiry: bytes) -> bool:
        """Take the session's entry out for a commit of ``record``.

        Returns False when the type index already holds ``index_expiry`` for the
        session: ``record`` was handed back, and the write it came from sent that.
        """
        entry = self._entries.pop(session_id, None)
        return not (
            entry is not None
            and entry[0] is None
            and entry[1] is record
            and entry[2] == index_expiry
        )

    def committed(self, write: int, record: SessionRecord, index_expiry: bytes) -> None:
        """Keep ``record`` as written by ``write``, with the type index expiry it has."""
        entries = self._entries
        entries[record.session_id] = (write, record, index_expiry)
        if len(entries) > self.max_kept:
            del entries[next(iter(entries))]

    def forget(self, session_id: str) -> None:
        """Drop what is kept for ``session_id``."""
        self._entries.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._entries

    def __repr__(self) -> str:
        return f"<WrittenRecords {len(self._entries)} kept>"
