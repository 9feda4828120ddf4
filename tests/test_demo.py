from __future__ import annotations

import io

from rich.console import Console

from nyx_sessions import EndCode
from nyx_sessions.__main__ import main
from nyx_sessions.demo import run_demo


async def test_demo_plays_every_scenario_and_prints_a_transcript() -> None:
    out = io.StringIO()
    results = await run_demo(Console(file=out, width=100, highlight=False))
    assert (results["counter"].code, results["counter"].result) == (EndCode.ENDED, 3)
    assert results["poll"].result == {"pizza": 2, "sushi": 1, "salad": 0}
    assert results["confirm"].code is EndCode.EXPIRED
    assert results["idle"].code is EndCode.EXPIRED
    assert results["paginator"].result == 3  # the last page shown
    assert results["form"].result == {"name": "Carol", "count": 2, "size": "large"}
    text = out.getvalue()
    assert "Only the person who started this can use it." in text
    assert "This has expired." in text
    assert "[ Yes ] (disabled)" in text
    assert "That page does not exist." in text
    assert "a whole number from 1 to 20." in text
    assert "\x1b[" not in text  # readable when piped to a file


def test_command_line_rejects_unknown_commands() -> None:
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["nonsense"])
    assert exit_info.value.code == 2
