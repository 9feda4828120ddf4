"""Walk and search the raw component payloads of messages and modals."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from nyx_sessions.testing.payloads import Payload

__all__ = ["BUTTON", "SELECT_TYPES", "find_component", "walk_components"]

BUTTON = 2
"""The component type of buttons."""

SELECT_TYPES = frozenset({3, 5, 6, 7, 8})
"""Component types of select menus: string, user, role, mentionable, channel."""


def walk_components(components: Iterable[Payload]) -> Iterator[Payload]:
    """Yield every component, depth first, including the layout ones.

    Action rows and containers hold ``components``, sections hold ``components`` and
    an ``accessory``, labels hold one ``component``.
    """
    for component in components:
        yield component
        yield from walk_components(component.get("components") or ())
        for key in ("accessory", "component"):
            child = component.get(key)
            if isinstance(child, dict):
                yield from walk_components((child,))


def find_component(
    components: Iterable[Payload],
    *,
    custom_id: str | None = None,
    label: str | None = None,
    types: frozenset[int] | None = None,
) -> Payload:
    """Return the one component that matches every criterion given.

    Raises
    ------
    LookupError
        No component matches, or several do.
    """
    matches: list[Payload] = []
    for component in walk_components(components):
        if types is not None and component.get("type") not in types:
            continue
        if custom_id is not None and component.get("custom_id") != custom_id:
            continue
        if label is not None and _label_of(component) != label:
            continue
        matches.append(component)
    if len(matches) != 1:
        wanted = _describe(custom_id=custom_id, label=label, types=types)
        found = "no component" if not matches else f"{len(matches)} components"
        raise LookupError(f"{found} with {wanted}")
    return matches[0]


def _label_of(component: Payload) -> Any:
    label = component.get("label")
    if label is None and component.get("type") in SELECT_TYPES:
        label = component.get("placeholder")
    return label


def _describe(*, custom_id: str | None, label: str | None, types: frozenset[int] | None) -> str:
    parts = []
    if custom_id is not None:
        parts.append(f"custom_id={custom_id!r}")
    if label is not None:
        parts.append(f"label={label!r}")
    if types is not None:
        parts.append(f"type in {sorted(types)}")
    return ", ".join(parts) or "any criteria"
