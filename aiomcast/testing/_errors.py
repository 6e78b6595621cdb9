"""The lab's one error type, shared by the lab, its description parser and its engines."""

from __future__ import annotations

__all__ = ["LabError"]


class LabError(RuntimeError):
    """The lab could not build or remove a namespace, link, address, route or router."""
