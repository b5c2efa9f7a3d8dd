"""Whose request this is, as the Hub says: the service's only source of identity.

Nothing in a request names its owner: the token is shown to the Hub
(``HubAuth``, which keeps answers for a few seconds), and the owner is the user
the Hub names. A service's token, a token without the service's access scope,
and a token the Hub does not know are refused; a Hub that cannot be asked is a
temporary failure (503), never "unauthorized", so a client keeps its saves.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.services.auth import HubAuth
from tornado.httputil import HTTPHeaders
from tornado.web import HTTPError

__all__ = ["Owners"]


class Owners:
    """Names the Hub user a request's token belongs to, if it may use the service."""

    def __init__(self, hub_auth: HubAuth) -> None:
        self.hub_auth = hub_auth

    @property
    def scopes(self) -> set[str]:
        """The scopes a token needs: access to this service (``access:services`` also does)."""
        return set(self.hub_auth.access_scopes)

    async def owner_of(self, headers: HTTPHeaders) -> str:
        """The user name the request's token belongs to; ``HTTPError`` 401, 403 or 503."""
        token = _token_in(headers)
        if token is None:
            raise HTTPError(401, "send your JupyterHub API token: Authorization: token <token>")
        try:
            model: dict[str, Any] | None = await self.hub_auth.user_for_token(token, sync=False)
        except HTTPError as exc:
            raise HTTPError(
                503, "the Hub cannot be asked who you are now; try again shortly"
            ) from exc
        if model is None:
            raise HTTPError(401, "the Hub does not know this token (expired or revoked?)")
        if model.get("kind") != "user":
            raise HTTPError(403, "only a user's token may use the archive service")
        if not self.hub_auth.check_scopes(self.scopes, model):
            raise HTTPError(403, f"this token lacks the scope {' or '.join(sorted(self.scopes))}")
        name: str = model["name"]
        return name


def _token_in(headers: HTTPHeaders) -> str | None:
    """The token of an ``Authorization: token …`` or ``Bearer …`` header."""
    scheme, _, token = headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not token.strip():
        return None
    return token.strip()
