"""What the archive service and the servers that push to it agree on: one place."""

from __future__ import annotations

__all__ = [
    "MAX_PAGE",
    "RETRIED_REFUSALS",
    "SET_ASIDE_STATUSES",
    "SHA256_HEADER",
    "VERSIONS_ENDPOINT",
]

VERSIONS_ENDPOINT = "api/versions"
"""Under the service's URL: ``POST`` one save (``?path=…&saved_at=…``), ``GET`` a path's."""
SHA256_HEADER = "X-Bookstore-Sha256"
"""The sha256 of a pushed save, as its sender computed it: the service checks it."""
SET_ASIDE_STATUSES = frozenset({400, 409, 413})
"""Answers that say a save can never be archived as it is: the sender sets it aside.
Any other failure (401, 403, 429, 5xx, no answer) is retried, the save kept."""
MAX_PAGE = 1000
"""The most versions one ``GET api/versions`` answers with: more are read page by page."""
RETRIED_REFUSALS = frozenset({401, 403, 408, 429})
"""The 4xx answers a retry may mend (a token not yet allowed, a timeout, a busy replica):
any other refusal of a rename or copy is final, so it never holds up the saves after it."""
