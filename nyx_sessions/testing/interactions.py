"""The ``data`` of interactions that users make: commands, clicks, selects, modal submits.

Each builder checks what the Discord client would refuse to send (a disabled button,
a value that is not an option, a required field left empty) and raises
:class:`ValueError` for it, so that a test fails where the user could not act.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import discord

from nyx_sessions.testing.components import BUTTON, SELECT_TYPES
from nyx_sessions.testing.payloads import resolved_payload
from nyx_sessions.testing.records import (
    InteractionResult,
    OfflineChannel,
    OfflineRole,
    OfflineUser,
    RecordedFile,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from nyx_sessions.testing.payloads import Payload
    from nyx_sessions.testing.world import OfflineWorld

__all__ = [
    "Entity",
    "button_data",
    "command_data",
    "find_modal",
    "modal_submit_data",
    "select_data",
]

Entity = OfflineUser | OfflineRole | OfflineChannel
"""Something a user, role, channel or mentionable option or select can pick."""

_OPTION = discord.AppCommandOptionType
_FILE_UPLOAD = discord.ComponentType.file_upload.value
_ENTITY_OPTIONS = {_OPTION.user, _OPTION.channel, _OPTION.role, _OPTION.mentionable}
# What each auto-populated select may pick.
_SELECT_PICKS: dict[int, tuple[type, ...]] = {
    5: (OfflineUser,),
    6: (OfflineRole,),
    7: (OfflineUser, OfflineRole),
    8: (OfflineChannel,),
}


class _Resolver:
    """Turns users, roles and channels into ids and collects their ``resolved`` data."""

    def __init__(self, world: OfflineWorld, invoker: OfflineUser, *, in_guild: bool) -> None:
        self.world = world
        self.invoker = invoker
        self.in_guild = in_guild
        self.users: dict[int, OfflineUser] = {}
        self.roles: dict[int, OfflineRole] = {}
        self.channels: dict[int, OfflineChannel] = {}
        self.attachments: dict[str, Payload] = {}

    def entity(self, value: object) -> Entity:
        if isinstance(value, OfflineUser | OfflineRole | OfflineChannel):
            return value
        entity_id = value if isinstance(value, int) else getattr(value, "id", None)
        world = self.world
        for table in (world.users, world.roles, world.channels):
            found = table.get(entity_id) if isinstance(entity_id, int) else None
            if found is not None:
                return found
        raise ValueError(f"{value!r} is no user, role or channel of the offline Discord")

    def pick(self, value: object) -> str:
        entity = self.entity(value)
        if isinstance(entity, OfflineUser):
            self.users[entity.id] = entity
        elif isinstance(entity, OfflineRole):
            self.roles[entity.id] = entity
        else:
            self.channels[entity.id] = entity
        return str(entity.id)

    def upload(self, file: object) -> str:
        """Record an uploaded file (a :class:`RecordedFile` or a file name); return its id."""
        if isinstance(file, RecordedFile):
            filename, content_type, size = (
                file.filename or file.name,
                file.content_type,
                len(file.data),
            )
        else:
            filename, content_type, size = str(file), None, 0
        attachment_id = str(self.world.new_id())
        url = f"https://cdn.offline.invalid/attachments/{attachment_id}/{filename}"
        attachment: Payload = {
            "id": attachment_id,
            "filename": filename,
            "size": size,
            "url": url,
            "proxy_url": url,
        }
        if content_type is not None:
            attachment["content_type"] = content_type
        self.attachments[attachment_id] = attachment
        return attachment_id

    def resolved(self) -> Payload:
        world = self.world
        members = {
            user.id: world.member_payload(user, with_user=False)
            for user in self.users.values()
            if self.in_guild and user.is_member
        }
        permissions = world.member_permissions(self.invoker) if self.in_guild else None
        channels = [
            world.channel_payload(channel, permissions=permissions)
            for channel in self.channels.values()
        ]
        resolved = resolved_payload(
            users=list(self.users.values()),
            members=members,
            roles=list(self.roles.values()),
            channels=channels,
        )
        if self.attachments:
            resolved["attachments"] = dict(self.attachments)
        return resolved


def command_data(
    world: OfflineWorld,
    tree: discord.app_commands.CommandTree[Any] | None,
    name: str,
    options: Mapping[str, object],
    *,
    invoker: OfflineUser,
    in_guild: bool,
) -> Payload:
    """Build a chat-input command's data; ``name`` may hold subcommands: ``"tag add"``.

    Option types come from the command in ``tree`` when it has one, else from the
    Python values.
    """
    root, *subcommands = name.split()
    command: Any = None
    guild_command = False
    if tree is not None:
        command = tree.get_command(root, guild=discord.Object(world.guild_id)) if in_guild else None
        guild_command = command is not None
        command = command or tree.get_command(root)
        for subcommand in subcommands:
            if isinstance(command, discord.app_commands.Group):
                command = command.get_command(subcommand)
    declared: dict[str, discord.AppCommandOptionType] = {}
    if isinstance(command, discord.app_commands.Command):
        for parameter in command.parameters:
            declared[parameter.display_name] = declared[parameter.name] = parameter.type
    resolver = _Resolver(world, invoker, in_guild=in_guild)
    built = [_option(resolver, key, value, declared.get(key)) for key, value in options.items()]
    for depth, subcommand in reversed(list(enumerate(subcommands))):
        kind = _OPTION.subcommand if depth == len(subcommands) - 1 else _OPTION.subcommand_group
        built = [{"name": subcommand, "type": kind.value, "options": built}]
    data: Payload = {"id": str(world.new_id()), "name": root, "type": 1, "options": built}
    resolved = resolver.resolved()
    if resolved:
        data["resolved"] = resolved
    if guild_command:
        data["guild_id"] = str(world.guild_id)
    return data


def _option(
    resolver: _Resolver, name: str, value: object, declared: discord.AppCommandOptionType | None
) -> Payload:
    kind = declared or _infer_option_type(value)
    converted: object
    if kind in _ENTITY_OPTIONS:
        converted = resolver.pick(value)
    elif kind is _OPTION.boolean:
        converted = bool(value)
    elif kind is _OPTION.integer:
        converted = int(value)  # type: ignore[call-overload]
    elif kind is _OPTION.number:
        converted = float(value)  # type: ignore[arg-type]
    elif kind is _OPTION.string:
        converted = str(value)
    else:
        raise ValueError(f"option {name!r}: {kind.name} options are not supported offline")
    return {"name": name, "type": kind.value, "value": converted}


def _infer_option_type(value: object) -> discord.AppCommandOptionType:
    if isinstance(value, bool):
        return _OPTION.boolean
    if isinstance(value, int):
        return _OPTION.integer
    if isinstance(value, float):
        return _OPTION.number
    if isinstance(value, str):
        return _OPTION.string
    if isinstance(value, OfflineUser | discord.abc.User):
        return _OPTION.user
    if isinstance(value, OfflineRole | discord.Role):
        return _OPTION.role
    if isinstance(value, OfflineChannel | discord.abc.GuildChannel):
        return _OPTION.channel
    raise ValueError(f"cannot tell the option type of {value!r}")


def button_data(button: Payload) -> Payload:
    """Build the data of a click on ``button``."""
    if button.get("type") != BUTTON:
        raise ValueError(f"component {button.get('custom_id')!r} is not a button")
    if button.get("disabled"):
        raise ValueError(f"button {button.get('label') or button.get('custom_id')!r} is disabled")
    if "custom_id" not in button:
        raise ValueError(f"button {button.get('label')!r} is a link or premium button")
    return {"custom_id": button["custom_id"], "component_type": BUTTON}


def select_data(
    world: OfflineWorld,
    select: Payload,
    values: Iterable[object],
    *,
    invoker: OfflineUser,
    in_guild: bool,
) -> Payload:
    """Build the data of choosing ``values`` in ``select``."""
    if select.get("disabled"):
        raise ValueError(f"select {select.get('custom_id')!r} is disabled")
    resolver = _Resolver(world, invoker, in_guild=in_guild)
    chosen = _select_values(resolver, select, list(values))
    data: Payload = {
        "custom_id": select["custom_id"],
        "component_type": select["type"],
        "values": chosen,
    }
    if select["type"] != discord.ComponentType.string_select.value:
        data["resolved"] = resolver.resolved()
    return data


def _select_values(resolver: _Resolver, select: Payload, values: list[object]) -> list[str]:
    custom_id = select.get("custom_id")
    low, high = select.get("min_values", 1), select.get("max_values", 1)
    if not low <= len(values) <= high:
        raise ValueError(f"select {custom_id!r} takes {low} to {high} values, not {len(values)}")
    component_type = select["type"]
    if component_type == discord.ComponentType.string_select.value:
        options = {option["value"] for option in select.get("options", [])}
        strings = [str(value) for value in values]
        unknown = [value for value in strings if value not in options]
        if unknown:
            raise ValueError(f"select {custom_id!r} has no option {unknown[0]!r}")
        return strings
    picks = _SELECT_PICKS.get(component_type)
    if picks is None:
        raise ValueError(f"component {custom_id!r} is not a select menu")
    for value in values:
        if not isinstance(resolver.entity(value), picks):
            raise ValueError(f"select {custom_id!r} cannot pick {value!r}")
    return [resolver.pick(value) for value in values]


def modal_submit_data(
    world: OfflineWorld,
    modal: Payload,
    values: Mapping[str, object],
    *,
    invoker: OfflineUser,
    in_guild: bool,
) -> Payload:
    """Build the data of submitting ``modal`` with ``values`` by custom id.

    A string fills a text input; a list picks in a select; a boolean ticks a checkbox; a
    list of :class:`RecordedFile` (or file names) fills a file upload.
    """
    resolver = _Resolver(world, invoker, in_guild=in_guild)
    remaining = dict(values)
    numbers = iter(range(1, 1000))

    def submitted(component: Payload) -> Payload:
        entry: Payload = {"type": component["type"], "id": component.get("id") or next(numbers)}
        if component["type"] == discord.ComponentType.action_row.value:
            entry["components"] = [submitted(child) for child in component["components"]]
        elif component["type"] == discord.ComponentType.label.value:
            entry["component"] = submitted(component["component"])
        elif "custom_id" in component:
            entry["custom_id"] = component["custom_id"]
            entry.update(
                _field_value(resolver, component, remaining.pop(component["custom_id"], None))
            )
        return entry

    components = [submitted(component) for component in modal.get("components", [])]
    if remaining:
        raise ValueError(f"modal {modal.get('custom_id')!r} has no field {next(iter(remaining))!r}")
    data: Payload = {"custom_id": modal["custom_id"], "components": components}
    resolved = resolver.resolved()
    if resolved:
        data["resolved"] = resolved
    return data


def _field_value(resolver: _Resolver, component: Payload, value: object) -> Payload:
    custom_id = component["custom_id"]
    component_type = component["type"]
    if component_type == discord.ComponentType.text_input.value:
        text = "" if value is None else str(value)
        if not text and component.get("required", True):
            raise ValueError(f"text input {custom_id!r} is required")
        return {"value": text}
    if component_type in SELECT_TYPES:
        if value is None and not component.get("required", True):
            return {"values": []}
        picked = [] if value is None else list(value)  # type: ignore[call-overload]
        return {"values": _select_values(resolver, {"min_values": 0, **component}, picked)}
    if component_type == _FILE_UPLOAD:
        files = [] if value is None else list(value)  # type: ignore[call-overload]
        return {"values": [resolver.upload(file) for file in files]}
    if isinstance(value, list | tuple):
        return {"values": list(value)}
    return {} if value is None else {"value": value}


def find_modal(
    world: OfflineWorld, modal: InteractionResult | Payload | str, values: Mapping[str, object]
) -> tuple[Payload, InteractionResult | None]:
    """Return a modal the bot showed and the interaction it answered.

    ``modal`` is that interaction, the modal payload, or its custom id (the latest modal
    with it). A custom id that the bot never showed stands for a modal of text inputs,
    one per key of ``values``, that no interaction opened.

    Raises
    ------
    LookupError
        The bot showed no such modal.
    """
    if isinstance(modal, InteractionResult):
        if modal.modal is None:
            raise LookupError(f"{modal!r} did not answer with a modal")
        return modal.modal, modal
    for result in reversed(world.interactions.values()):
        shown = result.modal
        if shown is not None and (shown is modal or shown.get("custom_id") == modal):
            return shown, result
    if not isinstance(modal, str):
        raise LookupError(f"the bot showed no modal {modal!r}")
    rows = [
        {"type": 1, "components": [{"type": 4, "custom_id": key, "required": False}]}
        for key in values
    ]
    return {"custom_id": modal, "components": rows}, None
