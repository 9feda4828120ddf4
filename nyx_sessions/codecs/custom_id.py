"""The custom-id codec: how a component's ``custom_id`` names its session.

A session's custom id is the codec's prefix, the session id and any number of tokens,
joined by the separator::

    nyx:Xq3v_9Kp2bTz-w:page:2
    ^^^ ^^^^^^^^^^^^^^ ^^^^ ^
    prefix  session id  tokens

Session ids are 1 to 64 characters of ``[A-Za-z0-9_-]``, so they never contain the
separator. Tokens are arbitrary strings: a ``%`` in a token is written ``%25`` and the
separator is written as ``%`` plus its hex code (``%3A`` for ``:``); nothing else is
escaped. Reading is therefore ``str.split`` plus an unescape of the rare token that holds
a ``%``, and every token, the empty string included, reads back exactly as it was pushed.

Discord caps a custom id at 100 characters; :meth:`CustomIdBuilder.build` counts the whole
id, prefix and escapes included, and raises :class:`CustomIdTooLongError` beyond it.
"""

from __future__ import annotations

import copy
import re
import string
from typing import TYPE_CHECKING, Protocol, Self, TypeGuard

from nyx_sessions.errors import CustomIdTooLongError, MalformedCustomIdError

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["CustomIdBuilder", "SessionCustomIdCodec", "StringIterator", "is_valid_session_id"]

_DISCORD_MAX_LENGTH = 100
_MAX_SESSION_ID_LENGTH = 64


class _HasId(Protocol):
    @property
    def id(self) -> str: ...


def is_valid_session_id(session_id: object, /) -> TypeGuard[str]:
    """Tell whether ``session_id`` is a str of 1 to 64 characters of ``[A-Za-z0-9_-]``."""
    # On the hot path of every click: C-level string methods, no regex. An ASCII string is
    # alphanumeric exactly when it is made of [A-Za-z0-9].
    return (
        isinstance(session_id, str)
        and 0 < len(session_id) <= _MAX_SESSION_ID_LENGTH
        and session_id.isascii()
        and session_id.replace("-", "a").replace("_", "a").isalnum()
    )


def _preview(text: str) -> str:
    """Return ``repr(text)``, cut short so that error messages stay readable."""
    if len(text) <= 120:
        return repr(text)
    return f"{text[:120]!r}... ({len(text)} characters)"


class SessionCustomIdCodec:
    """Build and read the custom ids of session components.

    The methods that take a session (any object with an ``id``) or a session id raise
    :class:`MalformedCustomIdError` when the id is not valid (see :func:`is_valid_session_id`).

    Parameters
    ----------
    prefix
        Marks the ids that belong to this codec; must not hold the separator or ``%``.
    separator
        One ASCII punctuation character other than ``%``, ``-`` and ``_``.
    max_length
        Longest id that :meth:`CustomIdBuilder.build` accepts, at most Discord's 100.
    """

    __slots__ = (
        "_escaped_separator",
        "_head",
        "_match_session_id",
        "_max_length",
        "_prefix",
        "_separator",
        "_unescapes",
    )

    def __init__(
        self, prefix: str = "nyx", *, separator: str = ":", max_length: int = _DISCORD_MAX_LENGTH
    ) -> None:
        if len(separator) != 1 or separator not in string.punctuation or separator in "%-_":
            raise ValueError(
                f"separator must be one ASCII punctuation character other than "
                f"'%', '-' and '_', not {separator!r}"
            )
        if not prefix or separator in prefix or "%" in prefix:
            raise ValueError(f"prefix must be non-empty without {separator!r} or '%': {prefix!r}")
        if not len(prefix) + 2 <= max_length <= _DISCORD_MAX_LENGTH:
            raise ValueError(
                f"max_length must leave room for the prefix and a session id and be at most "
                f"{_DISCORD_MAX_LENGTH}, not {max_length!r}"
            )
        self._prefix = prefix
        self._separator = separator
        self._max_length = max_length
        self._head = prefix + separator
        self._escaped_separator = f"%{ord(separator):02X}"
        # Only the two escapes that _escape writes are read, so every id has one spelling.
        self._unescapes = {"25": "%", self._escaped_separator[1:]: separator}
        # The head, then a valid session id that ends at a separator or at the end: a
        # match reads at most one character past the longest id, whatever the input.
        self._match_session_id = re.compile(
            f"{re.escape(self._head)}([A-Za-z0-9_-]{{1,{_MAX_SESSION_ID_LENGTH}}})"
            f"(?={re.escape(separator)}|\\Z)"
        ).match

    @property
    def prefix(self) -> str:
        """The prefix that marks this codec's ids."""
        return self._prefix

    @property
    def separator(self) -> str:
        """The character between the parts of an id."""
        return self._separator

    @property
    def max_length(self) -> int:
        """The longest id that a builder of this codec builds."""
        return self._max_length

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(prefix={self._prefix!r}, separator={self._separator!r}, "
            f"max_length={self._max_length})"
        )

    def serialize(self, session_or_id: str | _HasId) -> str:
        """Return ``prefix:session_id``, the id of a session's component with no tokens."""
        return self._head + self._session_id_of(session_or_id)

    def create_builder(self, session_or_id: str | _HasId) -> CustomIdBuilder:
        """Return an empty builder for the ids of a session's components."""
        return CustomIdBuilder(self, self._session_id_of(session_or_id))

    def create_iterator(self, custom_id: str) -> StringIterator:
        """Return an iterator over the tokens that follow the session id in ``custom_id``.

        Raises
        ------
        MalformedCustomIdError
            If ``custom_id`` is not one of this codec's ids or holds a bad escape.
        """
        session_id = self.extract_session_id(custom_id)
        if session_id is None:
            shown = _preview(custom_id) if isinstance(custom_id, str) else repr(type(custom_id))
            raise MalformedCustomIdError(
                f"{shown} is not a session custom id: expected "
                f"'{self._head}<session id>[{self._separator}<token>...]'"
            )
        tokens_start = len(self._head) + len(session_id) + 1  # past the separator, if any
        if tokens_start > len(custom_id):
            return StringIterator(())
        tokens = custom_id[tokens_start:].split(self._separator)
        return StringIterator([self._unescape(token, custom_id) for token in tokens])

    def extract_session_id(self, custom_id: object) -> str | None:
        """Return the session id in ``custom_id``, or None if it is not one of this codec's ids.

        Never raises, and looks at no more than the first few dozen characters, whatever
        it is given: it runs on every component interaction. The tokens are not checked;
        :meth:`create_iterator` does that.
        """
        if not isinstance(custom_id, str):
            return None
        found = self._match_session_id(custom_id)
        return None if found is None else found[1]

    def is_ours(self, custom_id: object) -> bool:
        """Tell whether ``custom_id`` names a session of this codec; never raises."""
        return self.extract_session_id(custom_id) is not None

    def _session_id_of(self, session_or_id: str | _HasId) -> str:
        session_id = (
            session_or_id if isinstance(session_or_id, str) else getattr(session_or_id, "id", None)
        )
        if not is_valid_session_id(session_id):
            raise MalformedCustomIdError(
                f"session id must be 1 to {_MAX_SESSION_ID_LENGTH} characters of "
                f"[A-Za-z0-9_-], got {session_id!r} from {type(session_or_id).__name__}"
            )
        return session_id

    def _escape(self, token: str) -> str:
        return token.replace("%", "%25").replace(self._separator, self._escaped_separator)

    def _unescape(self, token: str, custom_id: str) -> str:
        if "%" not in token:
            return token
        first, *escaped = token.split("%")
        parts = [first]
        for chunk in escaped:
            char = self._unescapes.get(chunk[:2])
            if char is None:
                raise MalformedCustomIdError(
                    f"bad escape {'%' + chunk[:2]!r} in custom id {_preview(custom_id)}: "
                    f"only '%25' and {self._escaped_separator!r} are valid"
                )
            parts += (char, chunk[2:])
        return "".join(parts)


class CustomIdBuilder:
    """Build the custom id of one session's component, token by token.

    Made by :meth:`SessionCustomIdCodec.create_builder`. ``push`` and ``set_at`` change
    the builder in place; ``clone`` and ``clone_push`` leave it alone.
    """

    __slots__ = ("_base", "_codec", "_tokens")

    def __init__(
        self, codec: SessionCustomIdCodec, session_id: str, tokens: Sequence[str | int] = ()
    ) -> None:
        self._codec = codec
        self._base = codec.serialize(session_id)
        self._tokens = [_as_token(token) for token in tokens]

    @property
    def tokens(self) -> tuple[str, ...]:
        """The tokens pushed so far, unescaped."""
        return tuple(self._tokens)

    def push(self, token: str | int) -> Self:
        """Append ``token`` (an int is written in decimal) and return this builder."""
        self._tokens.append(_as_token(token))
        return self

    def set_at(self, index: int, token: str | int) -> Self:
        """Replace the pushed token at ``index`` (0 or more) and return this builder."""
        if not 0 <= index < len(self._tokens):
            raise IndexError(f"token index {index} out of range for {len(self._tokens)} tokens")
        self._tokens[index] = _as_token(token)
        return self

    def clone(self) -> CustomIdBuilder:
        """Return an independent copy of this builder."""
        clone = copy.copy(self)
        clone._tokens = self._tokens.copy()
        return clone

    def clone_push(self, token: str | int) -> CustomIdBuilder:
        """Return a copy of this builder with ``token`` pushed; this builder is unchanged."""
        return self.clone().push(token)

    def build(self) -> str:
        """Return the custom id.

        Raises
        ------
        CustomIdTooLongError
            If the whole id is longer than the codec's ``max_length``.
        """
        custom_id = self._render()
        limit = self._codec.max_length
        if len(custom_id) > limit:
            whose = "Discord's" if limit == _DISCORD_MAX_LENGTH else "the codec's"
            raise CustomIdTooLongError(
                f"custom id is {len(custom_id)} characters long, over {whose} limit of "
                f"{limit}: {_preview(custom_id)}"
            )
        return custom_id

    def __len__(self) -> int:
        return len(self._render())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._base!r}, tokens={self.tokens!r})"

    def _render(self) -> str:
        escape = self._codec._escape
        return self._codec.separator.join([self._base, *map(escape, self._tokens)])


def _as_token(token: str | int) -> str:
    if isinstance(token, str):
        return str(token)
    if isinstance(token, int) and not isinstance(token, bool):
        return str(int(token))
    raise TypeError(f"a custom id token is a str or an int, not {type(token).__name__}")


class StringIterator:
    """Read the tokens of a custom id, by index or in order.

    Lookups that miss return None rather than raise: ids arrive from outside and a bad
    one should be handled, not crash the handler. Negative indexes always miss.
    """

    __slots__ = ("_position", "_tokens")

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = tuple(tokens)
        self._position = 0

    def get_tokens(self) -> list[str]:
        """Return a copy of all the tokens, whatever has been read."""
        return list(self._tokens)

    def get_at(self, index: int) -> str | None:
        """Return the token at ``index``, or None if there is none."""
        if 0 <= index < len(self._tokens):
            return self._tokens[index]
        return None

    def get_int_at(
        self, index: int, *, min_value: int | None = None, max_value: int | None = None
    ) -> int | None:
        """Return the token at ``index`` as an int.

        Returns None if the token is missing, is not a plain decimal integer (ASCII
        digits with an optional leading ``-``), or falls outside ``min_value`` to
        ``max_value`` (inclusive): ids can be forged, so check page numbers and the like.
        """
        token = self.get_at(index)
        if token is None:
            return None
        digits = token.removeprefix("-")
        if not (digits.isascii() and digits.isdigit()):
            return None
        try:
            value = int(token)
        except ValueError:  # more digits than int() accepts
            return None
        if (min_value is not None and value < min_value) or (
            max_value is not None and value > max_value
        ):
            return None
        return value

    def next(self) -> str | None:
        """Return the next token and move past it, or None when all are read."""
        token = self.peek()
        if token is not None:
            self._position += 1
        return token

    def peek(self) -> str | None:
        """Return the next token without moving past it, or None when all are read."""
        return self.get_at(self._position)

    @property
    def remaining(self) -> int:
        """How many tokens are left to read."""
        return len(self._tokens) - self._position

    def reset(self) -> None:
        """Go back to the first token."""
        self._position = 0

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> str:
        token = self.next()
        if token is None:
            raise StopIteration
        return token

    def __len__(self) -> int:
        return len(self._tokens)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self._tokens)!r}, position={self._position})"
