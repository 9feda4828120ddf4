"""Render the package's reStructuredText-isms in mkdocstrings' Markdown.

The package's docstrings follow the numpy convention with Sphinx roles
(``:class:`SessionManager```, ``:meth:`~AbstractSession.stop```), ``::`` literal blocks
and simple tables. mkdocstrings renders docstrings as Markdown, where those show up
verbatim. This griffe extension rewrites them before the docstrings are parsed:

- a role whose target is an object of the package becomes an optional cross-reference
  to it (autorefs leaves it as plain code when that object is not rendered, so it never
  warns); any other role (``discord.Client``, ``time.time``) becomes inline code;
- ``text::`` before a literal block becomes ``text:`` (the block stays indented, which
  Markdown renders as code);
- a simple table (``===  ===`` borders) becomes a Markdown table.

Nothing is rewritten in the package itself; drop this extension from ``mkdocs.yml``
once the docstrings use Markdown cross-references.
"""

from __future__ import annotations

import html
import itertools
import re
from typing import Any

from griffe import Alias, AliasResolutionError, CyclicAliasError, Extension, Module, Object

_ROLE = re.compile(r":(?:py:)?(class|meth|func|attr|mod|exc|data|obj|const):`([^`]+)`")
_CALLABLE_ROLES = frozenset({"meth", "func"})
_TITLED = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$")
_LITERAL_MARKER = re.compile(r"(?<=\S)::[ \t]*$", re.MULTILINE)
_TABLE_BORDER = re.compile(r"^=+(?: +=+)+[ \t]*$")


class SphinxRoles(Extension):
    """Rewrite Sphinx roles, literal markers and simple tables in the package's docstrings."""

    def on_package(self, *, pkg: Module, **kwargs: Any) -> None:
        """Rewrite every docstring of ``pkg`` once the whole package is loaded."""
        for obj in _walk(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _rewrite(obj.docstring.value, obj, pkg)


def _rewrite(text: str, scope: Object, pkg: Module) -> str:
    text = _ROLE.sub(lambda match: _role(match, scope, pkg), text)
    text = _LITERAL_MARKER.sub(":", text)
    return _tables(text)


def _walk(obj: Object) -> list[Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, Object):
            found.extend(_walk(member))
    return found


def _role(match: re.Match[str], scope: Object, pkg: Module) -> str:
    kind, target = match.group(1), match.group(2).strip()
    if titled := _TITLED.match(target):  # :attr:`title <target>`
        shown, target = titled["title"], titled["target"].lstrip("~.")
    else:
        short = target.startswith("~")
        target = target.lstrip("~.")
        shown = target.rsplit(".", 1)[-1] if short else target
        if kind in _CALLABLE_ROLES:
            shown += "()"
    path = _resolve(target, scope, pkg)
    if path is None:
        return f"`{shown}`"
    return (
        f'<autoref identifier="{html.escape(path)}" optional>'
        f"<code>{html.escape(shown)}</code></autoref>"
    )


def _resolve(target: str, scope: Object, pkg: Module) -> str | None:
    """Return the canonical path of ``target`` seen from ``scope``, if it is the package's."""
    parts = target.split(".")
    candidates: list[Object | Alias] = []
    if parts[0] == pkg.name:
        candidates.append(pkg)
        parts = parts[1:]
    else:
        current: Object | None = scope
        while current is not None:
            if current.is_class or current.is_module:
                candidates.append(current)
            current = current.parent
        candidates.append(pkg)
    for start in candidates:
        found = _walk_path(start, parts)
        if found is not None:
            return found
    return None


def _walk_path(start: Object | Alias, parts: list[str]) -> str | None:
    obj: Object | Alias = start
    try:
        for part in parts:
            obj = obj.members[part]
        final = obj.final_target if isinstance(obj, Alias) else obj
    except (KeyError, AliasResolutionError, CyclicAliasError):
        return None
    path = final.path
    root = start.path.split(".", 1)[0]
    return path if path == root or path.startswith(root + ".") else None


def _tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    index = 0
    while index < len(lines):
        table = _read_table(lines, index)
        if table is None:
            out.append(lines[index])
            index += 1
            continue
        rows, index = table
        out.append("| " + " | ".join(rows[0]) + " |")
        out.append("|" + "---|" * len(rows[0]))
        out.extend("| " + " | ".join(row) + " |" for row in rows[1:])
    return "\n".join(out)


def _read_table(lines: list[str], start: int) -> tuple[list[list[str]], int] | None:
    """Read a simple table with one header row at ``start``; None if there is none."""
    border = lines[start]
    if not _TABLE_BORDER.match(border):
        return None
    columns = [m.start() for m in re.finditer(r"=+", border)]
    # border, header, border, body..., border
    if start + 2 >= len(lines) or not _TABLE_BORDER.match(lines[start + 2]):
        return None
    rows = [_cells(lines[start + 1], columns)]
    index = start + 3
    while index < len(lines) and not _TABLE_BORDER.match(lines[index]):
        if lines[index].strip():
            rows.append(_cells(lines[index], columns))
        index += 1
    if index == len(lines):
        return None
    return rows, index + 1


def _cells(line: str, columns: list[int]) -> list[str]:
    cuts = [0]
    for column in columns[1:]:
        cut = max(column, cuts[-1])
        # A cell that runs past its column ends at the next space.
        while 0 < cut < len(line) and not line[cut - 1].isspace():
            cut += 1
        cuts.append(cut)
    cuts.append(len(line))
    return [_escape_pipes(line[begin:end].strip()) for begin, end in itertools.pairwise(cuts)]


def _escape_pipes(cell: str) -> str:
    """Escape the ``|`` outside code spans; Markdown tables keep those inside as they are."""
    parts = re.split(r"(`+[^`]*`+)", cell)
    return "".join(part if part.startswith("`") else part.replace("|", "\\|") for part in parts)
