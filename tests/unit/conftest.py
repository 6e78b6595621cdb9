"""The unit tests: pure functions and tables, with no socket, no root and no network.

Every test here runs with ``socket.socket`` refusing to be created, so a unit test that
reaches for the network fails instead of quietly becoming a socket test; the group runs in
seconds anywhere (``python -m pytest tests/unit``).
"""

from __future__ import annotations

import socket
from typing import NoReturn

import pytest


class SocketRefused(AssertionError):
    """A unit test tried to open a socket."""


def _refuse(*args: object, **kwargs: object) -> NoReturn:
    raise SocketRefused("unit tests open no socket: move this test to tests/sockets/")


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``socket.socket`` (and ``socket.socketpair``) refuse for the test's duration."""
    monkeypatch.setattr(socket, "socket", _refuse)
    monkeypatch.setattr(socket, "socketpair", _refuse)
