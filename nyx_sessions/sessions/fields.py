"""The fields of a :class:`~nyx_sessions.sessions.FormSession`: text entries and choices."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ChoiceField", "FormField", "TextField", "Validator"]

Validator = Callable[[str], str | None]
"""Checks a text entry: returns an error message for the user, or None when it is valid."""


@dataclass(frozen=True, slots=True)
class TextField:
    """A text entry, typed in a modal.

    Attributes
    ----------
    name:
        The key of the value in the result.
    label:
        What the user sees (up to 45 characters).
    placeholder:
        Greyed-out text in the empty input.
    required:
        Whether the field must be filled in; an optional empty field gives None.
    paragraph:
        A multi-line input instead of a single line.
    min_length, max_length:
        Limits on the length of the entry (checked again on submit).
    validate:
        Checks the entry (stripped of surrounding spaces); returns an error message or
        None. Declared on the class, so a session restored after a restart has it.
    convert:
        Turns a valid entry into the value stored (e.g. ``int``); it must give a value
        a store can keep (str, int, float, bool, None, list, dict). A ``ValueError``
        or ``TypeError`` from it counts as an invalid entry.
    """

    name: str
    label: str
    placeholder: str | None = None
    required: bool = True
    paragraph: bool = False
    min_length: int | None = None
    max_length: int | None = None
    validate: Validator | None = None
    convert: Callable[[str], Any] | None = None

    def check(self, raw: str) -> tuple[Any, str | None]:
        """Return ``(value, None)`` for a valid entry, ``(None, error)`` otherwise."""
        text = raw.strip()
        if not text:
            return None, (f"{self.label} is required." if self.required else None)
        if self.min_length is not None and len(text) < self.min_length:
            return None, f"{self.label}: at least {self.min_length} characters, please."
        if self.max_length is not None and len(text) > self.max_length:
            return None, f"{self.label}: at most {self.max_length} characters, please."
        if self.validate is not None:
            error = self.validate(text)
            if error is not None:
                return None, f"{self.label}: {error}"
        if self.convert is None:
            return text, None
        try:
            return self.convert(text), None
        except (ValueError, TypeError):
            return None, f"{self.label}: that is not a valid value."


@dataclass(frozen=True, slots=True)
class ChoiceField:
    """A choice among fixed options, picked in a select menu.

    Attributes
    ----------
    name:
        The key of the value in the result.
    label:
        What the user sees.
    options:
        Up to 25 options: a str (label and value at once) or a ``(label, value)`` pair.
    placeholder:
        The select's text before a choice.
    min_values, max_values:
        How many options may be picked. With ``max_values`` 1 the value is the str
        picked, otherwise the list of them.
    """

    name: str
    label: str
    options: Sequence[str | tuple[str, str]]
    placeholder: str | None = None
    min_values: int = 1
    max_values: int = 1

    @property
    def choices(self) -> list[tuple[str, str]]:
        """The options as ``(label, value)`` pairs."""
        return [(option, option) if isinstance(option, str) else option for option in self.options]

    def check(self, picked: Sequence[str]) -> tuple[Any, str | None]:
        """Return ``(value, None)`` for a valid pick, ``(None, error)`` otherwise."""
        values = {value for _, value in self.choices}
        if not self.min_values <= len(picked) <= self.max_values or not set(picked) <= values:
            return None, f"{self.label}: pick from the listed options."
        return (picked[0] if self.max_values == 1 else list(picked)), None


FormField = TextField | ChoiceField
"""A field of a :class:`FormSession`."""
