"""Authorizers that refuse, for ``--ServerApp.authorizer_class``.

Imported by a ``jupyter server`` subprocess (tests/ on its ``PYTHONPATH``). It
logs what it was asked, so a test can tell the authorizer's 403 from any other.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.auth.authorizer import Authorizer


class DenyAllAuthorizer(Authorizer):
    """Every user is authenticated as usual, and refused every action."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        self.log.warning(
            "deny-authorizer: refused %s on %s to %s", action, resource, type(handler).__name__
        )
        return False


class DenyHistoryAuthorizer(Authorizer):
    """Everything Jupyter does is allowed, bookstore's API refused: a user who may edit
    notebooks but not read their history."""

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        return not type(handler).__module__.startswith("bookstore.")
