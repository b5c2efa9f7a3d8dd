"""What a version's label may be: one rule for every surface that sets one.

A label protects its version from every prune, so one a person cannot see (only
spaces) or read on one line (control characters, which a terminal would also
act on) is refused, as is one longer than the index column holding it.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_LABEL_LENGTH", "label_problem"]

MAX_LABEL_LENGTH = 1024
"""Characters a label may have: the length of the index's ``label`` column."""


def label_problem(text: str) -> str | None:
    """Why ``text`` cannot be a label, in words; ``None`` if it can.

    The empty string is no label: the surfaces that accept it read it as "remove
    the label".
    """
    if len(text) > MAX_LABEL_LENGTH:
        return f"a label has at most {MAX_LABEL_LENGTH:,} characters; this one has {len(text):,}"
    if text and not text.strip():
        return "a label of only white space would be invisible"
    if any(unicodedata.category(character) == "Cc" for character in text):
        return "a label is one line of text, without control characters (tabs, newlines)"
    return None
