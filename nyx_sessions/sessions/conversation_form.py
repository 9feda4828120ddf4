"""ConversationForm: the multi-step form of :class:`FormSession`, written as a conversation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import discord

from ..conversation import ConversationSession
from ..end import EndCode
from ..filters import OwnerOnly
from ..inputs import modal_values, select_values
from .fields import ChoiceField, FormField, TextField
from .form import _check_fields, _shown

__all__ = ["ConversationForm"]


class ConversationForm(ConversationSession[Any]):
    """A form filled in step by step, declared like a :class:`FormSession`.

    The same fields and steps (up to 5 consecutive text fields in one modal, a select
    menu per choice field), the same re-prompt with the errors shown, and a "Cancel"
    button; the flow is one loop in :meth:`converse` instead of a state machine spread
    over handlers. The result is the dict of values (or ``result_type(**values)``),
    None when cancelled or out of time.

    Examples
    --------
    >>> class Signup(ConversationForm):  # doctest: +SKIP
    ...     session_type = "bot.signup"
    ...     fields = (TextField("name", "Your name"), ChoiceField("team", "Team", ["red", "blue"]))
    """

    session_type = "nyx.conversation_form"
    idle_ttl = 600.0
    update_filter = OwnerOnly()

    title: ClassVar[str] = "Form"
    fields: ClassVar[Sequence[FormField]] = ()
    result_type: ClassVar[Callable[..., Any] | None] = None
    cancelled_text: ClassVar[str] = "Cancelled."
    expired_text: ClassVar[str] = "This form ran out of time before it was finished."
    closed_text: ClassVar[str] = "This form was closed."
    not_now_text = "That step of the form is already done."

    def __init__(
        self, interaction: discord.Interaction[Any], *, session_id: str | None = None
    ) -> None:
        super().__init__(interaction, session_id=session_id)
        _check_fields(type(self).fields)

    async def converse(self) -> Any:
        """Ask every step until its entries are valid; return the values."""
        steps = _steps(self.fields)
        values: dict[str, Any] = self.data.setdefault("values", {})
        drafts: dict[str, str] = {}
        errors: list[str] = []
        answer: discord.Interaction[Any] = self.start_interaction
        for number, fields in enumerate(steps):
            shown = False  # this step's message: sent or edited once, then on errors
            while True:
                if not shown or errors:
                    text, view = self.render(number, len(steps), errors), self.build_view(number)
                    if answer.type is discord.InteractionType.application_command:
                        await answer.response.send_message(text, view=view)
                    else:
                        await answer.response.edit_message(content=text, view=view)
                    shown = True
                answer = await self.wait_for(f"fill{number}", f"entry{number}", "cancel")
                action = self.manager.codec.create_iterator(_custom_id(answer)).get_at(0)
                if action == "cancel":
                    await answer.response.edit_message(
                        content=self.render(note=self.cancelled_text), view=None
                    )
                    return None
                if action == f"fill{number}":
                    await answer.response.send_modal(self.build_modal(number, fields, drafts))
                    errors = []
                    continue
                entered, errors = self.check(answer, fields, drafts)
                if not errors:
                    values.update(entered)
                    break
        await answer.response.edit_message(content=self.render(note="Done."), view=None)
        factory = type(self).result_type
        return factory(**values) if factory is not None else dict(values)

    def check(
        self, answer: discord.Interaction[Any], fields: list[FormField], drafts: dict[str, str]
    ) -> tuple[dict[str, Any], list[str]]:
        """Return the valid entries of a step's submit or choice, and the errors."""
        accepted: dict[str, Any] = {}
        errors: list[str] = []
        for field in fields:
            if isinstance(field, ChoiceField):
                value, error = field.check(select_values(answer, str))
            else:
                drafts[field.name] = modal_values(answer).text(field.name)
                value, error = field.check(drafts[field.name])
            if error is None:
                accepted[field.name] = value
            else:
                errors.append(error)
        return accepted, errors

    def render(
        self, step: int = 0, steps: int = 0, errors: Sequence[str] = (), note: str | None = None
    ) -> str:
        """Return the message: the title, the answers so far, the errors, or ``note``."""
        values = self.data.get("values", {})
        lines = [
            f"**{self.title}**" + (f" \u00b7 step {step + 1} of {steps}" if note is None else "")
        ]
        lines += [
            f"\u2705 {f.label}: {_shown(values[f.name])}" for f in self.fields if f.name in values
        ]
        lines += [f"\u26a0\ufe0f {error}" for error in errors]
        return "\n".join([*lines, f"*{note}*"] if note is not None else lines)

    def build_view(self, step: int) -> discord.ui.View:
        """Return the components of ``step``: a select, or a "Fill in" button; and Cancel."""
        first = _steps(self.fields)[step][0]
        view = discord.ui.View(timeout=None)
        if isinstance(first, ChoiceField):
            options = [
                discord.SelectOption(label=label, value=value) for label, value in first.choices
            ]
            view.add_item(
                discord.ui.Select(
                    custom_id=self.custom_id.push(f"entry{step}").build(),
                    placeholder=first.placeholder or first.label,
                    min_values=first.min_values,
                    max_values=first.max_values,
                    options=options,
                )
            )
        else:
            fill = self.custom_id.push(f"fill{step}").build()
            view.add_item(
                discord.ui.Button(
                    label="Fill in", style=discord.ButtonStyle.primary, custom_id=fill
                )
            )
        view.add_item(
            discord.ui.Button(label="Cancel", custom_id=self.custom_id.push("cancel").build())
        )
        return view

    def build_modal(
        self, step: int, fields: list[FormField], drafts: dict[str, str]
    ) -> discord.ui.Modal:
        """Return the modal of a step of text fields, filled with what was typed before."""
        modal = discord.ui.Modal(
            title=self.title[:45], custom_id=self.custom_id.push(f"entry{step}").build()
        )
        for field in fields:
            assert isinstance(field, TextField)
            style = discord.TextStyle.paragraph if field.paragraph else discord.TextStyle.short
            modal.add_item(
                discord.ui.TextInput(
                    label=field.label[:45],
                    custom_id=field.name,
                    placeholder=field.placeholder,
                    default=drafts.get(field.name),
                    required=field.required,
                    min_length=field.min_length,
                    max_length=field.max_length,
                    style=style,
                )
            )
        return modal

    async def end(self) -> None:
        """Remove the components when the form ends without its flow having done so."""
        await super().end()
        if self.end_code in (EndCode.EXPIRED, EndCode.CANCELLED, EndCode.SHUTDOWN):
            note = self.expired_text if self.end_code is EndCode.EXPIRED else self.closed_text
            await self.edit_message(content=self.render(note=note), view=None)


def _steps(fields: Sequence[FormField]) -> list[list[FormField]]:
    """Group the fields into steps: up to 5 consecutive text fields, or one choice."""
    steps: list[list[FormField]] = []
    for field in fields:
        last = steps[-1] if steps else None
        if (
            isinstance(field, TextField)
            and last
            and isinstance(last[0], TextField)
            and len(last) < 5
        ):
            last.append(field)
        else:
            steps.append([field])
    return steps


def _custom_id(interaction: discord.Interaction[Any]) -> str:
    data: Any = interaction.data or {}
    return str(data.get("custom_id", ""))
