"""PaginationSession: pages browsed with buttons, a page select and a jump-to-page modal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, TypedDict, cast

import discord

from ..actions import action
from ..codecs import StringIterator
from ..errors import SessionStateError
from ..filters import OwnerOnly
from ..inputs import modal_values, select_values
from ..session import AbstractSession
from ._common import edit_by_id, refuse

__all__ = ["Page", "PageLike", "PageSource", "PaginationSession", "as_page"]

_SELECT_LIMIT = 25
_EMPTY_PAGE = "*(empty page)*"


class Page(TypedDict, total=False):
    """One page, as kept in session data: text content and/or one embed (as a dict)."""

    content: str | None
    embed: dict[str, Any] | None


PageLike = str | discord.Embed | Page | Mapping[str, Any]
"""What a page may be given as: text, an embed, or a mapping with ``content``/``embed``."""

PageSource = Callable[[int], Awaitable[PageLike]]
"""An async callable that returns the page at a 0-based index."""


def as_page(page: PageLike) -> Page:
    """Return ``page`` as a :class:`Page` dict that a persistent store can keep.

    Raises
    ------
    TypeError
        ``page`` is none of text, an embed or a mapping.
    """
    if isinstance(page, str):
        return {"content": page, "embed": None}
    if isinstance(page, discord.Embed):
        return {"content": None, "embed": cast("dict[str, Any]", page.to_dict())}
    if isinstance(page, Mapping):
        content = page.get("content")
        embed = page.get("embed")
        if isinstance(embed, discord.Embed):
            embed = embed.to_dict()
        if (content is not None and not isinstance(content, str)) or (
            embed is not None and not isinstance(embed, dict)
        ):
            raise TypeError("a page's content is a str and its embed a dict or discord.Embed")
        return {"content": content, "embed": embed}
    raise TypeError(f"a page is a str, a discord.Embed or a mapping, not {type(page).__name__}")


class PaginationSession(AbstractSession[int]):
    """Browse pages with first/previous/next/last buttons, a page select and a jump modal.

    Each button carries the number of the page it leads to in its custom id, so a click
    on an old copy of the message goes where that button said. A page number that does
    not exist (a forged id, a page past the end, not a number) changes nothing: the user
    gets an ephemeral "That page does not exist." So does a jump-modal entry that is not
    a page number. The first/previous buttons are disabled on the first page,
    next/last on the last one; the select (shown for up to 25 pages) marks the current
    page. Only the owner may browse (:attr:`update_filter` is :class:`OwnerOnly`).

    The result is the index (0-based) of the last page shown. When the session ends
    (closed, expired, cancelled) its components are removed from the message, by
    message id, and the last page stays.

    Parameters
    ----------
    interaction:
        The interaction that starts the session; the first page is its response.
    pages:
        The pages: text, embeds, or mappings with ``content`` and/or ``embed``. Kept in
        :attr:`data`, so the session survives a restart with a persistent store.
    source:
        Instead of ``pages``: an async callable ``source(index) -> page``, with
        ``page_count``. A callable cannot be stored: a session restored from a
        persistent store has no source and fails to turn pages. For sessions that must
        survive restarts, subclass and override :meth:`get_page` instead (and register
        the subclass with the manager).
    page_count:
        The number of pages of a ``source`` or of a subclass's :meth:`get_page`.
    start_page:
        The page shown first (0-based; clamped to the pages there are).
    session_id:
        The session's id; random by default.

    Examples
    --------
    >>> session = PaginationSession(interaction, ["one", "two", "three"])  # doctest: +SKIP
    >>> await manager.start(session)  # doctest: +SKIP
    """

    session_type = "nyx.pagination"
    ttl: float | None = 300.0
    update_filter = OwnerOnly()

    not_found_text: ClassVar[str] = "That page does not exist."
    """The ephemeral answer to a page number that does not exist."""
    invalid_text: ClassVar[str] = "That button is no longer valid."
    """The ephemeral answer to a custom id this session does not know."""
    unknown_action_message = invalid_text
    closable: ClassVar[bool] = True
    """Whether a "Close" button ends the session."""

    _source: PageSource | None = None

    def __init__(
        self,
        interaction: discord.Interaction[Any],
        pages: Sequence[PageLike] | None = None,
        *,
        source: PageSource | None = None,
        page_count: int | None = None,
        start_page: int = 0,
        session_id: str | None = None,
    ) -> None:
        super().__init__(interaction, session_id=session_id)
        overrides_get_page = type(self).get_page is not PaginationSession.get_page
        if pages is not None:
            if source is not None:
                raise ValueError("give pages or a source, not both")
            stored = [as_page(page) for page in pages]
            self.data["pages"] = stored
            count = len(stored)
        elif source is not None or overrides_get_page:
            if page_count is None:
                raise ValueError("a page source needs a page_count")
            count = page_count
        else:
            raise ValueError("give pages, or a source and a page_count, or override get_page")
        if count < 1:
            raise ValueError("a pagination needs at least one page")
        self._source = source
        self.data["count"] = count
        self.data["page"] = min(max(start_page, 0), count - 1)
        self.result = self.data["page"]

    # -- pages --------------------------------------------------------------------------

    @property
    def page(self) -> int:
        """The index (0-based) of the page shown."""
        return int(self.data["page"])

    @property
    def page_count(self) -> int:
        """The number of pages."""
        return int(self.data["count"])

    async def get_page(self, index: int) -> PageLike:
        """Return the page at ``index`` (0-based, always in range).

        Override it to make pages on demand in a way that survives restarts: a subclass
        is restored by class, so its ``get_page`` is there again after a restart.

        Raises
        ------
        SessionStateError
            The session was restored from a store without its ``source`` callable.
        """
        if "pages" in self.data:
            page: Page = self.data["pages"][index]
            return page
        if self._source is None:
            raise SessionStateError(
                f"pagination {self.id} has no page source: a source callable is not stored, "
                "so after a restart override get_page in a registered subclass instead"
            )
        return await self._source(index)

    def render(self, page: Page) -> dict[str, Any]:
        """Return the message fields (``content``, ``embeds``, ``view``) that show ``page``."""
        content = page.get("content")
        embed = page.get("embed")
        if not content and not embed:
            content = _EMPTY_PAGE
        embeds = [discord.Embed.from_dict(embed)] if embed else []
        return {"content": content, "embeds": embeds, "view": self.build_view()}

    def build_view(self) -> discord.ui.View:
        """Return the navigation components for the current page."""
        page, last = self.page, self.page_count - 1
        view = discord.ui.View(timeout=None)
        jump = discord.ui.Button[discord.ui.View](
            label=f"{page + 1} / {last + 1}",
            custom_id=self.action_id("jump"),
            style=discord.ButtonStyle.primary,
            disabled=last == 0,
            row=0,
        )
        for button in (
            self._go_button("first", "\u00ab", 0, disabled=page == 0),
            self._go_button("prev", "\u2039", max(page - 1, 0), disabled=page == 0),
            jump,
            self._go_button("next", "\u203a", min(page + 1, last), disabled=page == last),
            self._go_button("last", "\u00bb", last, disabled=page == last),
        ):
            view.add_item(button)
        if 1 < last + 1 <= _SELECT_LIMIT:
            options = [
                discord.SelectOption(
                    label=f"Page {index + 1}", value=str(index), default=index == page
                )
                for index in range(last + 1)
            ]
            view.add_item(
                discord.ui.Select(
                    custom_id=self.action_id("select"),
                    placeholder="Go to page",
                    options=options,
                    row=1,
                )
            )
        if self.closable:
            view.add_item(
                discord.ui.Button(
                    label="Close",
                    custom_id=self.action_id("close"),
                    style=discord.ButtonStyle.danger,
                    row=2,
                )
            )
        return view

    # -- hooks --------------------------------------------------------------------------

    async def start(self) -> None:
        """Send the first page."""
        page = as_page(await self.get_page(self.page))
        await self.reply(self.start_interaction, **self.render(page))

    @action("go")
    async def go(self, interaction: discord.Interaction[Any], target: str = "", *_: str) -> bool:
        """Turn to the page a button names (a forged page is refused)."""
        page = StringIterator([target]).get_int_at(0, min_value=0, max_value=self.page_count - 1)
        if page is None:
            return await refuse(interaction, self.not_found_text)
        return await self._show(interaction, page)

    @action("jump")
    async def jump(self, interaction: discord.Interaction[Any]) -> bool:
        """Open the jump modal; on its submit, turn to the page typed (1-based)."""
        if interaction.type is not discord.InteractionType.modal_submit:
            await interaction.response.send_modal(self._jump_modal())
            return True
        number = _page_number(modal_values(interaction).get("page"), 1, self.page_count)
        if number is None:
            return await refuse(interaction, f"Enter a page number from 1 to {self.page_count}.")
        return await self._show(interaction, number - 1)

    @action("select")
    async def select(self, interaction: discord.Interaction[Any]) -> bool:
        """Turn to the page picked in the select."""
        values = select_values(interaction, str)
        target = _page_number(values[0] if values else None, 0, self.page_count - 1)
        if target is None:
            return await refuse(interaction, self.not_found_text)
        return await self._show(interaction, target)

    @action("close")
    async def close(self, interaction: discord.Interaction[Any]) -> bool:
        """Close the paginator, when it is closable."""
        if not self.closable:
            return await refuse(interaction, self.invalid_text)
        await self.stop(result=self.page)  # runs once this handler returns
        await self.edit(interaction, view=None)
        self.data["tidied"] = True
        return False

    async def end(self) -> None:
        """Record the last page as the result; remove the components from the message."""
        self.result = self.page
        if not self.data.get("tidied"):
            await edit_by_id(self, view=None)

    # -- helpers ------------------------------------------------------------------------

    async def _show(self, interaction: discord.Interaction[Any], target: int) -> bool:
        page = as_page(await self.get_page(target))
        self.data["page"] = target
        self.result = target
        await self.edit(interaction, **self.render(page))  # also after a deferral
        return True

    def _go_button(
        self, name: str, label: str, target: int, *, disabled: bool
    ) -> discord.ui.Button[discord.ui.View]:
        # The target page travels in the id, so a click on an old copy of the message
        # goes where its button said; the name keeps the ids of one message distinct
        # when two buttons lead to the same page.
        custom_id = self.action_id("go", target, name)
        return discord.ui.Button(label=label, custom_id=custom_id, disabled=disabled, row=0)

    def _jump_modal(self) -> discord.ui.Modal:
        count = self.page_count
        modal = discord.ui.Modal(title="Go to page", custom_id=self.action_id("jump"))
        modal.add_item(
            discord.ui.TextInput(
                label=f"Page number (1-{count})",
                custom_id="page",
                placeholder=str(self.page + 1),
                min_length=1,
                max_length=len(str(count)),
            )
        )
        return modal


def _page_number(text: object, low: int, high: int) -> int | None:
    """Return ``text``, a decimal str, as an int within ``low``..``high``; else None."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return None
    value = int(text)
    return value if low <= value <= high else None
