"""Every Python example in README.md and docs/ type-checks with mypy --strict; some run.

How a page becomes code:

- a block titled ``title="name.py"`` is the file ``name.py`` (later blocks may import it);
- the other blocks of the page are joined, in order, into the page's own module, after a
  few declared names that fragments lean on (``client``, ``bot``, ``tree``, ``manager``,
  ``interaction``, ``session``): declared, never given a value, so using one at run time fails;
- a block with a top-level ``await`` (a fragment of a command handler) is wrapped in an
  ``async def``;
- a block right after ``<!-- docs-test: no-run -->`` (one that connects to a real
  server, or a second manager for the same client) is type-checked but left out when the
  page runs.

Each page is checked with ``mypy.api.run`` in a directory of its own, with the project's
mypy settings (strict). A page whose code defines ``async def test_...`` functions is
also imported and those functions are run, offline, with the pytest plugin's fixtures
given by name (``offline_discord``, ``manual_clock``, ``redis_url``).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mypy import api as mypy_api

from nyx_sessions.testing import ManualClock, OfflineDiscord
from nyx_sessions.testing.redis_server import RedisServerProcess

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(
    [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")],
    key=lambda path: str(path.relative_to(ROOT)),
)
BLOCK = re.compile(r"(<!-- docs-test: no-run -->\s*)?^```python([^\n]*)\n(.*?)^```", re.S | re.M)
TITLE = re.compile(r'title="([A-Za-z_][A-Za-z0-9_]*)\.py"')
PRELUDE = """\
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from nyx_sessions import AbstractSession, SessionManager

client: discord.Client
bot: commands.Bot
tree: app_commands.CommandTree[discord.Client]
manager: SessionManager
interaction: discord.Interaction[Any]
session: AbstractSession[Any]
"""


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def examples(page: Path, *, running: bool = False) -> tuple[dict[str, str], list[str]]:
    """Return a page's titled files and its other blocks (when ``running``, runnable ones)."""
    files: dict[str, str] = {}
    blocks: list[str] = []
    for no_run, info, code in BLOCK.findall(page.read_text(encoding="utf-8")):
        if running and no_run:
            continue
        title = TITLE.search(info)
        if title is not None:
            files[title.group(1)] = code
        else:
            blocks.append(code)
    return files, blocks


def has_top_level_await(code: str) -> bool:
    try:
        compile(code, "<docs example>", "exec", dont_inherit=True)
    except SyntaxError as error:
        return "outside" in str(error.msg) and "await" in str(error.msg)
    return False


def page_module(blocks: list[str]) -> str:
    parts = [PRELUDE]
    for number, code in enumerate(blocks):
        if has_top_level_await(code):
            body = textwrap.indent(code, "    ")
            code = f"async def _fragment_{number}() -> None:\n{body}"
        parts.append(code)
    return "\n\n".join(parts)


def write_page(page: Path, directory: Path, *, running: bool = False) -> str:
    """Write a page's code into ``directory``; return the module name of its page module."""
    files, blocks = examples(page, running=running)
    for name, code in files.items():
        (directory / f"{name}.py").write_text(code, encoding="utf-8")
    module = "docs_page_" + re.sub(r"\W", "_", page_id(page).removesuffix(".md"))
    if blocks:
        (directory / f"{module}.py").write_text(page_module(blocks), encoding="utf-8")
    return module


PAGES_WITH_CODE = [page for page in PAGES if any(examples(page))]


@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=page_id)
def test_examples_type_check_strictly(page: Path, tmp_path: Path) -> None:
    write_page(page, tmp_path)
    cache = ROOT / ".mypy_cache" / "docs-examples"
    stdout, stderr, status = mypy_api.run(
        [
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(cache),
            "--no-warn-unused-configs",
            "--allow-redefinition",
            str(tmp_path),
        ]
    )
    assert status == 0, f"{page_id(page)}: mypy --strict says\n{stdout}{stderr}"


@asynccontextmanager
async def fixtures_for(test: Callable[..., Any]) -> AsyncIterator[dict[str, Any]]:
    values: dict[str, Any] = {}
    async with AsyncExitStack() as stack:
        for name in inspect.signature(test).parameters:
            if name == "offline_discord":
                values[name] = await stack.enter_async_context(OfflineDiscord())
            elif name == "manual_clock":
                values[name] = ManualClock()
            elif name == "redis_url":
                server = RedisServerProcess()
                server.start()
                stack.callback(server.stop)
                values[name] = server.url
            else:
                raise LookupError(f"{test.__qualname__} asks for an unknown fixture {name!r}")
        yield values


def runnable_tests(page: Path) -> list[str]:
    files, blocks = examples(page)
    code = "\n".join([*files.values(), *blocks])
    return re.findall(r"^async def (test_\w+)\(", code, re.M)


RUNNABLE = [(page, name) for page in PAGES_WITH_CODE for name in runnable_tests(page)]


@pytest.mark.parametrize(
    ("page", "name"), RUNNABLE, ids=[f"{page_id(p)}::{n}" for p, n in RUNNABLE]
)
async def test_examples_run_offline(page: Path, name: str, tmp_path: Path) -> None:
    module_name = write_page(page, tmp_path, running=True)
    sys.path.insert(0, str(tmp_path))
    try:
        files, _ = examples(page)
        for candidate in [*files, module_name]:
            sys.modules.pop(candidate, None)
        test = None
        for candidate in [*files, module_name]:
            if not (tmp_path / f"{candidate}.py").exists():
                continue
            module = importlib.import_module(candidate)
            test = getattr(module, name, test)
        assert test is not None, f"{name} not found in {page_id(page)}"
        async with fixtures_for(test) as values:
            await test(**values)
    finally:
        sys.path.remove(str(tmp_path))
        for candidate in [*examples(page)[0], module_name]:
            sys.modules.pop(candidate, None)


def test_docs_signatures_have_a_formatter() -> None:
    """mkdocstrings breaks long signatures only when a formatter (ruff) is installed."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    docs_extra = project["project"]["optional-dependencies"]["docs"]
    assert any(requirement.startswith("ruff") for requirement in docs_extra)
    assert re.search(r"^ruff==", (ROOT / "requirements/docs.lock").read_text(), re.M)
    mkdocs = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "separate_signature: true" in mkdocs
    assert re.search(r"line_length: \d+", mkdocs)
