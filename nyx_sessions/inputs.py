"""Reading what a user entered: the fields of a modal submit and the choice in a select menu.

:func:`modal_values` reads every kind of modal field (text inputs, selects in labels,
radio groups, checkboxes, checkbox groups, file uploads); :func:`select_values` reads a
select menu's choice. Users, members, roles, channels and attachments come back as
discord.py objects, resolved by :class:`discord.app_commands.Namespace` from the
interaction's ``resolved`` data, as discord.py does for command options.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar, cast, overload

import discord
from discord.app_commands import AppCommandChannel, AppCommandThread, Namespace

if TYPE_CHECKING:
    from discord.types.interactions import ApplicationCommandInteractionDataOption, ResolvedData

__all__ = [
    "ModalValue",
    "ModalValues",
    "SelectValue",
    "custom_id_of",
    "modal_values",
    "select_values",
]

T = TypeVar("T")

SelectValue: TypeAlias = (
    "str | discord.User | discord.Member | discord.Role | AppCommandChannel | AppCommandThread"
    " | discord.Attachment | discord.Object"
)
"""One chosen value: an option's value, or the user, role, channel or file it names."""

ModalValue: TypeAlias = "str | bool | list[SelectValue] | None"
"""One modal field: text (str), a radio choice (str or None), a checkbox (bool), or picks."""

# Component type of a select or a file upload -> the command option type whose resolved
# objects discord.py builds the same way (user 6, channel 7, role 8, mentionable 9,
# attachment 11).
_OPTION_TYPE_OF = {
    discord.ComponentType.user_select.value: 6,
    discord.ComponentType.role_select.value: 8,
    discord.ComponentType.mentionable_select.value: 9,
    discord.ComponentType.channel_select.value: 7,
    discord.ComponentType.file_upload.value: 11,
}
_ACTION_ROW = discord.ComponentType.action_row.value
_LABEL = discord.ComponentType.label.value


def custom_id_of(interaction: discord.Interaction[Any]) -> str:
    """Return the custom id of a component or modal interaction ('' when it has none)."""
    data: Any = interaction.data or {}
    custom_id = data.get("custom_id")
    return custom_id if isinstance(custom_id, str) else ""


def _resolve(
    interaction: discord.Interaction[Any], component_type: int, values: list[str]
) -> list[SelectValue]:
    option_type = _OPTION_TYPE_OF.get(component_type)
    if option_type is None:
        return [str(value) for value in values]
    data: Any = interaction.data or {}
    options: list[ApplicationCommandInteractionDataOption] = [
        {"type": option_type, "name": str(index), "value": value}  # type: ignore[misc]
        for index, value in enumerate(values)
    ]
    # A Namespace resolves snowflakes to discord.py objects (a Member where member data
    # came along, else a User; Role; AppCommandChannel; Attachment), or discord.Object.
    resolved = cast("ResolvedData", data.get("resolved") or {})
    namespace = Namespace(interaction, resolved, options)
    return [value for _, value in namespace]


class ModalValues(Mapping[str, ModalValue]):
    """The fields of a modal submit, by custom id, with typed accessors.

    As a mapping, a text input gives a ``str``, a radio group a ``str`` (or None when
    nothing was chosen), a checkbox a ``bool``, and a select, checkbox group or file
    upload a list (of ``str`` option values, or of resolved users, members, roles,
    channels or attachments).
    """

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, ModalValue]) -> None:
        self._values = values

    def __getitem__(self, custom_id: str) -> ModalValue:
        return self._values[custom_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def text(self, custom_id: str, default: str = "") -> str:
        """Return a text input's (or a radio group's) value; ``default`` when absent or empty."""
        value = self._values.get(custom_id)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            raise TypeError(f"modal field {custom_id!r} is not text: {value!r}")
        return value

    def flag(self, custom_id: str) -> bool:
        """Return whether a checkbox was ticked (False when absent)."""
        value = self._values.get(custom_id, False)
        if not isinstance(value, bool):
            raise TypeError(f"modal field {custom_id!r} is not a checkbox: {value!r}")
        return value

    def strings(self, custom_id: str) -> list[str]:
        """Return the option values chosen in a string select or checkbox group."""
        return self.picked(custom_id, str)

    def attachments(self, custom_id: str) -> list[discord.Attachment]:
        """Return the files uploaded in a file upload field."""
        return self.picked(custom_id, discord.Attachment)

    def picked(self, custom_id: str, kind: type[T]) -> list[T]:
        """Return the values of a select, checkbox group or file upload, each a ``kind``.

        Raises
        ------
        TypeError
            The field is not a list of ``kind``.
        """
        value = self._values.get(custom_id, [])
        if not isinstance(value, list):
            raise TypeError(f"modal field {custom_id!r} is not a list: {value!r}")
        return _of_kind(value, kind, f"modal field {custom_id!r}")

    def __repr__(self) -> str:
        return f"ModalValues({self._values!r})"


def _of_kind(values: list[Any], kind: type[T], what: str) -> list[T]:
    for value in values:
        if not isinstance(value, kind):
            raise TypeError(f"{what} holds {value!r}, not a {kind.__name__}")
    return values


def modal_values(interaction: discord.Interaction[Any]) -> ModalValues:
    """Return the fields of a modal submit, by custom id.

    Walks action rows and labels, so that modals of text inputs and Label modals with
    selects, radio groups, checkboxes and file uploads read alike.

    Examples
    --------
    >>> values = modal_values(interaction)  # doctest: +SKIP
    >>> values.text("title"), values.strings("tags"), values.flag("urgent")  # doctest: +SKIP
    """
    data: Any = interaction.data or {}
    values: dict[str, ModalValue] = {}
    pending: list[Any] = list(data.get("components") or [])
    while pending:
        component = pending.pop(0)
        if not isinstance(component, dict):
            continue
        kind = component.get("type")
        if kind == _ACTION_ROW:
            pending.extend(component.get("components") or [])
            continue
        if kind == _LABEL:
            pending.append(component.get("component"))
            continue
        custom_id = component.get("custom_id")
        if not isinstance(custom_id, str):
            continue
        if "values" in component:
            raw = [str(value) for value in component.get("values") or []]
            values[custom_id] = _resolve(interaction, kind if isinstance(kind, int) else 0, raw)
        elif "value" in component:
            value = component["value"]
            values[custom_id] = value if isinstance(value, bool) or value is None else str(value)
    return ModalValues(values)


@overload
def select_values(interaction: discord.Interaction[Any]) -> list[SelectValue]: ...


@overload
def select_values(interaction: discord.Interaction[Any], kind: type[T]) -> list[T]: ...


def select_values(interaction: discord.Interaction[Any], kind: type[Any] = object) -> list[Any]:
    """Return what was chosen in a select menu.

    A string select gives its option values (``str``); a user, role, mentionable or
    channel select gives resolved discord.py objects (a :class:`discord.Member` in a
    guild, else a :class:`discord.User`; :class:`discord.Role`;
    :class:`~discord.app_commands.AppCommandChannel` or
    :class:`~discord.app_commands.AppCommandThread`).

    Parameters
    ----------
    interaction:
        A select menu interaction.
    kind:
        The type every value must have, so that the list is typed (``select_values(
        interaction, str)``, ``select_values(interaction, discord.Member)``).

    Raises
    ------
    TypeError
        A value is not a ``kind``.
    """
    data: Any = interaction.data or {}
    component_type = data.get("component_type")
    raw = [str(value) for value in data.get("values") or []]
    chosen = _resolve(interaction, component_type if isinstance(component_type, int) else 0, raw)
    return _of_kind(chosen, kind, "the select menu")
