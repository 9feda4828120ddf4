"""Caps on live sessions, so that one user (or a flood) cannot fill the bot's memory."""

from __future__ import annotations

from .errors import SessionLimitError

__all__ = ["SessionLimits"]


class SessionLimits:
    """Caps on the sessions started by this manager that are live in this process.

    Parameters
    ----------
    max_sessions:
        The most live sessions at once, or None for no cap (a store may still have a
        bound of its own, such as ``MemoryStore(maxsize=...)``).
    max_sessions_per_user:
        The most live sessions one user may have started, or None for no cap.
    """

    __slots__ = ("_live", "_per_user", "max_sessions", "max_sessions_per_user")

    def __init__(
        self, max_sessions: int | None = None, max_sessions_per_user: int | None = None
    ) -> None:
        for name, value in (("max_sessions", max_sessions), ("per user", max_sessions_per_user)):
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, or None")
        self.max_sessions = max_sessions
        self.max_sessions_per_user = max_sessions_per_user
        self._live = 0
        self._per_user: dict[int, int] = {}

    def check(self, owner_id: int) -> None:
        """Raise :class:`~nyx_sessions.errors.SessionLimitError` if one more is too many."""
        if self.max_sessions is not None and self._live >= self.max_sessions:
            raise SessionLimitError(
                "Too many sessions are open right now. Please try again in a little while."
            )
        cap = self.max_sessions_per_user
        if cap is not None and self._per_user.get(owner_id, 0) >= cap:
            plural = "session" if cap == 1 else "sessions"
            raise SessionLimitError(
                f"You already have {cap} {plural} open. Finish one before starting another."
            )

    def started(self, owner_id: int) -> None:
        """Count a session that started."""
        self._live += 1
        self._per_user[owner_id] = self._per_user.get(owner_id, 0) + 1

    def ended(self, owner_id: int) -> None:
        """Uncount a session that ended or left this process."""
        self._live -= 1
        left = self._per_user.get(owner_id, 0) - 1
        if left > 0:
            self._per_user[owner_id] = left
        else:
            self._per_user.pop(owner_id, None)  # no entry per user that ever played

    def count(self, owner_id: int | None = None) -> int:
        """Return the live sessions counted, for one user or in all."""
        return self._live if owner_id is None else self._per_user.get(owner_id, 0)

    def __repr__(self) -> str:
        return (
            f"SessionLimits(max_sessions={self.max_sessions}, "
            f"max_sessions_per_user={self.max_sessions_per_user}, live={self._live})"
        )
