from __future__ import annotations

import importlib
import inspect

import pytest

import nyx_sessions

PACKAGES = [
    "nyx_sessions",
    "nyx_sessions.codecs",
    "nyx_sessions.filters",
    "nyx_sessions.sessions",
    "nyx_sessions.stores",
    "nyx_sessions.testing",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_unique(name: str) -> None:
    module = importlib.import_module(name)
    names = list(module.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))
    for exported in names:
        assert hasattr(module, exported), f"{name}.{exported} is listed but missing"


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and getattr(value, "__module__", "").startswith("nyx_sessions")
    }
    assert public <= set(module.__all__), f"not exported: {sorted(public - set(module.__all__))}"


def test_contract_names_are_importable() -> None:
    from nyx_sessions import (  # noqa: F401
        AbstractSession,
        EndCode,
        OwnerOnly,
        SessionEvent,
        SessionManager,
    )

    assert [code.name for code in nyx_sessions.EndCode] == [
        "ENDED",
        "EXPIRED",
        "CANCELLED",
        "ERROR",
        "REJECTED",
        "SHUTDOWN",
    ]
    assert [event.name for event in nyx_sessions.SessionEvent] == [
        "START",
        "UPDATE",
        "END",
        "FILTERED",
        "ERROR",
        "MISSING",
    ]


def test_core_imports_without_redis() -> None:
    import sys

    assert "redis" not in sys.modules or "nyx_sessions.stores.redis" in sys.modules


def test_errors_subclass_builtins_where_the_meaning_matches() -> None:
    from nyx_sessions import errors

    assert issubclass(errors.SessionNotFoundError, KeyError)
    assert issubclass(errors.CustomIdTooLongError, ValueError)
    assert issubclass(errors.StoreUnavailableError, ConnectionError)
    assert issubclass(errors.LeaseTimeoutError, TimeoutError)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), errors.NyxSessionError)
        assert getattr(errors, name).__doc__
