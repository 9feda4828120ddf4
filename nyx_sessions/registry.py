"""Which session classes may be restored from a store, by their stable ``session_type``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CorruptRecordError,
    RecordVersionError,
    SessionTypeNotRegisteredError,
    StateEncodeError,
    UnknownSessionTypeError,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .codecs.state import StateCodec
    from .session import AbstractSession, Session
    from .stores.base import SessionRecord

__all__ = ["SessionRegistry"]


class SessionRegistry:
    """Session classes by ``session_type``, and how to rebuild one from a record."""

    __slots__ = ("_classes",)

    def __init__(self, classes: Iterable[type[AbstractSession[Any]]] = ()) -> None:
        self._classes: dict[str, type[AbstractSession[Any]]] = {}
        self.register(*classes)

    def register(self, *classes: type[AbstractSession[Any]]) -> None:
        """Register ``classes``; a second class under the same ``session_type`` is an error."""
        for cls in classes:
            key = cls.session_type
            if not key:
                raise ValueError(f"{cls!r} has an empty session_type")
            known = self._classes.get(key)
            if known is not None and known is not cls:
                raise ValueError(
                    f"session_type {key!r} is registered for {known!r} already; "
                    f"give {cls!r} a session_type of its own"
                )
            self._classes[key] = cls

    def get(self, session_type: str) -> type[AbstractSession[Any]] | None:
        """Return the class registered under ``session_type``, or None."""
        return self._classes.get(session_type)

    def __contains__(self, session_type: object) -> bool:
        return session_type in self._classes

    def __len__(self) -> int:
        return len(self._classes)

    def check_startable(self, session: Session[Any], codec: StateCodec | None = None) -> None:
        """Check that ``session`` can live in a persistent store, before it is started.

        A session whose class is not registered would work until the first restart, then
        be unknown; data that the state codec cannot encode would fail at the first save.
        Both are found here, before anything is sent to Discord.

        Parameters
        ----------
        session:
            The session about to start.
        codec:
            The store's state codec, to encode :attr:`~AbstractSession.data` with; None
            checks the class only (the store's ``create`` encodes the data anyway).

        Raises
        ------
        SessionTypeNotRegisteredError
            The session's class is not registered under its ``session_type``.
        StateEncodeError
            The session's data holds a value the codec cannot encode.
        """
        registered = self._classes.get(session.session_type)
        if registered is not type(session):
            cls = type(session)
            found = (
                f"{session.session_type!r} names {registered.__qualname__}"
                if registered is not None
                else f"{session.session_type!r} is not registered"
            )
            raise SessionTypeNotRegisteredError(
                f"{cls.__module__}.{cls.__qualname__} cannot be restored from the store after "
                f"a restart: session_type {found}. Register the class with "
                f"SessionManager.register({cls.__qualname__}) or "
                f"SessionManager(..., sessions=[{cls.__qualname__}])"
            )
        if codec is None:
            return
        try:
            codec.encode_value(session.data)
        except StateEncodeError as error:
            raise StateEncodeError(
                f"session {session.id} ({session.session_type}): its data cannot be stored: {error}"
            ) from None

    def restore(self, record: SessionRecord) -> AbstractSession[Any]:
        """Rebuild a session object from ``record`` (not started; its manager is unset)."""
        cls = self._classes.get(record.session_type)
        if cls is None:
            raise UnknownSessionTypeError(
                f"session {record.session_id} is a {record.session_type!r}, which is not "
                "registered with this manager (SessionManager.register)"
            )
        return cls.restore(
            session_id=record.session_id,
            owner_id=record.owner_id,
            guild_id=record.guild_id,
            channel_id=record.channel_id,
            message_id=record.message_id,
            data=self.migrate(cls, record),
            result=record.result,
        )

    @staticmethod
    def migrate(cls: type[Any], record: SessionRecord) -> dict[str, Any]:
        """Return ``record.data`` brought up to ``cls.data_version``."""
        current: int = getattr(cls, "data_version", 1)
        if record.data_version > current:
            raise RecordVersionError(
                f"session {record.session_id} has data version {record.data_version}, newer "
                f"than {cls.__qualname__}'s {current}: is an older release serving it?"
            )
        if record.data_version == current:
            return record.data
        try:
            data: dict[str, Any] = cls.migrate_data(dict(record.data), record.data_version)
        except Exception as error:
            raise CorruptRecordError(
                f"session {record.session_id}: migrating data from version "
                f"{record.data_version} to {current} failed: {error!r}"
            ) from error
        record.data_version = current
        record.data = data
        return data

    def __repr__(self) -> str:
        return f"<SessionRegistry {sorted(self._classes)}>"
