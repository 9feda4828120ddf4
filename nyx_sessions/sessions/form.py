"""FormSession: a multi-step form declared as a list of text and choice fields."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

import discord

from .._types import ResultT
from ..actions import action
from ..end import EndCode
from ..filters import OwnerOnly
from ..inputs import modal_values, select_values
from ..session import AbstractSession
from ._common import edit_by_id, refuse
from .fields import ChoiceField, FormField, TextField

__all__ = ["FormSession"]

_MODAL_FIELDS = 5
_SELECT_OPTIONS = 25


class FormSession(AbstractSession[ResultT]):
    """A form filled in step by step; declare its fields on a subclass.

    Consecutive text fields (up to 5) make one step, a modal opened by a "Fill in"
    button; each choice field is a step of its own, a select menu. An invalid entry
    keeps the form at that step and shows the errors in the message; the modal opens
    again with what was typed. A "Cancel" button ends the form without a result.

    The result is a dict of the values by field name, or ``result_type(**values)``
    when :attr:`result_type` is set (e.g. a dataclass); None when the form was
    cancelled or ran out. A result that is not a plain dict does not travel to end
    promises awaited in other processes (they get None).

    Fields, validators and ``result_type`` live on the class, not in :attr:`data`, so
    a form restored after a restart has them: give each form class a stable
    :attr:`session_type` and register it with the manager.

    Examples
    --------
    >>> class Signup(FormSession[dict[str, Any]]):  # doctest: +SKIP
    ...     session_type = "bot.signup"
    ...     title = "Sign up"
    ...     fields = (
    ...         TextField("name", "Your name", max_length=32),
    ...         TextField("age", "Your age", validate=digits_only, convert=int),
    ...         ChoiceField("team", "Your team", options=["red", "blue"]),
    ...     )
    """

    session_type = "nyx.form"
    ttl: float | None = 600.0
    update_filter = OwnerOnly()

    title: ClassVar[str] = "Form"
    """The form's title, shown in the message and the modals."""
    fields: ClassVar[Sequence[FormField]] = ()
    """The fields, in the order they are asked."""
    result_type: ClassVar[Callable[..., Any] | None] = None
    """Builds the result from the values as keyword arguments; None for a dict."""
    cancelled_text: ClassVar[str] = "Cancelled."
    expired_text: ClassVar[str] = "This form ran out of time before it was finished."
    closed_text: ClassVar[str] = "This form was closed."
    stale_text: ClassVar[str] = "That step of the form is already done."
    invalid_text: ClassVar[str] = "That button is no longer valid."
    unknown_action_message = invalid_text

    def __init__(
        self, interaction: discord.Interaction[Any], *, session_id: str | None = None
    ) -> None:
        super().__init__(interaction, session_id=session_id)
        _check_fields(type(self).fields)
        self.data.update(step=0, values={}, drafts={}, errors=[])

    # -- structure ----------------------------------------------------------------------

    @classmethod
    def steps(cls) -> list[list[FormField]]:
        """Return the fields grouped into steps."""
        steps: list[list[FormField]] = []
        for field in cls.fields:
            last = steps[-1] if steps else None
            if (
                isinstance(field, TextField)
                and last is not None
                and isinstance(last[0], TextField)
                and len(last) < _MODAL_FIELDS
            ):
                last.append(field)
            else:
                steps.append([field])
        return steps

    @property
    def values(self) -> dict[str, Any]:
        """The values accepted so far, by field name."""
        return dict(self.data["values"])

    def get_result(self) -> ResultT | None:
        """Return the values as a dict, or built with :attr:`result_type`; None if unfinished."""
        if not self.data.get("done"):
            return None
        factory = type(self).result_type
        values = self.values
        return cast(ResultT, factory(**values) if factory is not None else values)

    # -- rendering ----------------------------------------------------------------------

    def render(self, note: str | None = None) -> str:
        """Return the message content: the title, the answers so far, errors or ``note``."""
        steps = self.steps()
        step: int = self.data["step"]
        lines = [f"**{self.title}**"]
        if note is None:
            lines[0] += f" \u00b7 step {step + 1} of {len(steps)}"
        for field in self.fields:
            if field.name in self.data["values"]:
                lines.append(f"\u2705 {field.label}: {_shown(self.data['values'][field.name])}")
            elif note is None and field in steps[step]:
                lines.append(f"\u25b6\ufe0f {field.label}")
        lines.extend(f"\u26a0\ufe0f {error}" for error in self.data["errors"])
        if note is not None:
            lines.append(f"*{note}*")
        return "\n".join(lines)

    def build_view(self) -> discord.ui.View:
        """Return the components of the current step and a cancel button."""
        step: int = self.data["step"]
        fields = self.steps()[step]
        view = discord.ui.View(timeout=None)
        first = fields[0]
        if isinstance(first, ChoiceField):
            view.add_item(
                discord.ui.Select(
                    custom_id=self.action_id("pick", step),
                    placeholder=first.placeholder or first.label,
                    min_values=first.min_values,
                    max_values=first.max_values,
                    options=[
                        discord.SelectOption(label=label, value=value)
                        for label, value in first.choices
                    ],
                )
            )
        else:
            view.add_item(
                discord.ui.Button(
                    label="Fill in",
                    style=discord.ButtonStyle.primary,
                    custom_id=self.action_id("open", step),
                )
            )
        view.add_item(discord.ui.Button(label="Cancel", custom_id=self.action_id("cancel")))
        return view

    def build_modal(self) -> discord.ui.Modal:
        """Return the modal of the current step, filled with what was typed before."""
        step: int = self.data["step"]
        modal = discord.ui.Modal(title=self.title[:45], custom_id=self.action_id("modal", step))
        for field in self.steps()[step]:
            assert isinstance(field, TextField)
            modal.add_item(
                discord.ui.TextInput(
                    label=field.label[:45],
                    custom_id=field.name,
                    placeholder=field.placeholder,
                    default=self.data["drafts"].get(field.name),
                    required=field.required,
                    min_length=field.min_length,
                    max_length=field.max_length,
                    style=discord.TextStyle.paragraph
                    if field.paragraph
                    else discord.TextStyle.short,
                )
            )
        return modal

    # -- hooks --------------------------------------------------------------------------

    async def start(self) -> None:
        """Send the first step."""
        await self.reply(self.start_interaction, self.render(), view=self.build_view())

    @action("cancel")
    async def cancel(self, interaction: discord.Interaction[Any]) -> bool:
        """Cancel the form."""
        await self.stop(reason="cancelled")  # runs once this handler returns
        await self.edit(interaction, content=self.render(self.cancelled_text), view=None)
        self.data["tidied"] = True
        return False

    @action("open")
    async def open_modal(self, interaction: discord.Interaction[Any], step: str = "") -> bool:
        """Open the modal of the current step."""
        if step != str(self.data["step"]):
            return await refuse(interaction, self.stale_text)
        await interaction.response.send_modal(self.build_modal())
        return True

    @action("modal")
    async def submitted(self, interaction: discord.Interaction[Any], step: str = "") -> bool:
        """Check the text fields of the current step; move on, or show the errors."""
        fields = self.steps()[self.data["step"]]
        if step != str(self.data["step"]) or not isinstance(fields[0], TextField):
            return await refuse(interaction, self.stale_text)
        values = modal_values(interaction)
        accepted: dict[str, Any] = {}
        errors: list[str] = []
        for field in fields:
            text = values.text(field.name)
            self.data["drafts"][field.name] = text
            value, error = field.check(text)
            if error is None:
                accepted[field.name] = value
            else:
                errors.append(error)
        return await self._settle_step(interaction, accepted, errors)

    @action("pick")
    async def pick(self, interaction: discord.Interaction[Any], step: str = "") -> bool:
        """Check the choice of the current step; move on, or show the error."""
        field = self.steps()[self.data["step"]][0]
        if step != str(self.data["step"]) or not isinstance(field, ChoiceField):
            return await refuse(interaction, self.stale_text)
        value, error = field.check(select_values(interaction, str))
        if error is None:
            return await self._settle_step(interaction, {field.name: value}, [])
        return await self._settle_step(interaction, {}, [error])

    async def end(self) -> None:
        """Remove the components, saying why the form ended, unless a handler did."""
        if self.data.get("tidied"):
            return
        note = self.expired_text if self.end_code is EndCode.EXPIRED else self.closed_text
        await edit_by_id(self, content=self.render(note), view=None)

    # -- helpers ------------------------------------------------------------------------

    async def _settle_step(
        self, interaction: discord.Interaction[Any], accepted: dict[str, Any], errors: list[str]
    ) -> bool:
        self.data["errors"] = errors
        if errors:  # re-prompt: the same step, with the errors shown
            await self.edit(interaction, content=self.render(), view=self.build_view())
            return True
        self.data["values"].update(accepted)
        self.data["step"] += 1
        if self.data["step"] < len(self.steps()):
            await self.edit(interaction, content=self.render(), view=self.build_view())
            return True
        self.data["done"] = True
        await self.stop()  # runs once this handler returns, also if the edit fails
        await self.edit(interaction, content=self.render("Done."), view=None)
        self.data["tidied"] = True
        return False


def _shown(value: Any) -> str:
    if value is None:
        return "\u2014"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return str(value)


def _check_fields(fields: Sequence[FormField]) -> None:
    if not fields:
        raise ValueError("a form needs fields: declare them on a FormSession subclass")
    names = [field.name for field in fields]
    if len(set(names)) != len(names):
        raise ValueError("the fields of a form need distinct names")
    for field in fields:
        if isinstance(field, ChoiceField) and not 1 <= len(field.options) <= _SELECT_OPTIONS:
            raise ValueError(f"choice field {field.name!r} needs 1 to 25 options")
