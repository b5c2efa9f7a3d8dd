"""Notebook bytes: which paths are notebooks, and converting between bytes and models.

The one place that decides what counts as a notebook, reads ``.ipynb`` JSON,
validates it, and turns a contents-API model into the bytes a save writes (and
back), so the archive, the server and the command line never disagree.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from bookstore.core.errors import CorruptVersion

__all__ = [
    "NOTEBOOK_SUFFIX",
    "bytes_to_model",
    "is_blank",
    "is_notebook_path",
    "model_to_bytes",
    "notebook_problem",
    "read_notebook_json",
    "source_text",
    "validate_notebook",
]

NOTEBOOK_SUFFIX = ".ipynb"


def is_notebook_path(path: str) -> bool:
    """Whether ``path`` names a notebook (whatever the contents API was told its type is)."""
    return path.endswith(NOTEBOOK_SUFFIX)


def read_notebook_json(data: bytes | str, what: str) -> dict[str, Any]:
    """The JSON document of an nbformat 4 notebook, or ``ValueError`` saying why not.

    Only the shape is checked (an object with a list of cells), which is all a
    summary or a diff needs; ``validate_notebook`` checks the whole schema.
    """
    try:
        document = json.loads(data)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{what}: its JSON is invalid ({error.msg} at line {error.lineno}, "
            f"column {error.colno})."
        ) from error
    except UnicodeDecodeError as error:
        raise ValueError(f"{what}: it is not UTF-8 text.") from error
    except RecursionError as error:
        raise ValueError(f"{what}: its JSON is nested too deeply.") from error
    if not isinstance(document, dict) or not isinstance(document.get("cells"), list):
        raise ValueError(f"{what}: it has no list of cells (only nbformat 4 can be compared).")
    return document


def is_blank(content: bytes) -> bool:
    """Whether ``content`` holds nothing a person wrote: nothing but white space, or a
    notebook whose cells are all empty. Two such files are alike by chance, so their
    sameness says nothing about whether one is the other moved."""
    if not content.strip():
        return True
    try:
        document = read_notebook_json(content, "content")
    except ValueError:
        return False
    return all(
        isinstance(cell, dict) and not (source_text(cell.get("source")) or "").strip()
        for cell in document["cells"]
    )


def source_text(value: Any) -> str | None:
    """nbformat's multiline string (one string, or a list of lines) as one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(line, str) for line in value):
        return "".join(value)
    return None


def notebook_problem(content: bytes) -> str | None:
    """Why nbformat would not accept ``content`` as a notebook, in one line; ``None`` if
    it would.

    Seconds for a notebook of many thousands of cells: servers call it off the
    event loop. The schema is checked once (``nbformat.reads`` checks it anyway,
    and hands over what it found).
    """
    import nbformat  # costs 100 ms: only commands that restore pay for it

    found: dict[str, Exception] = {}
    try:
        text = content.decode("utf-8")
        nbformat.reads(text, as_version=nbformat.NO_CONVERT, capture_validation_error=found)
    except Exception as exc:  # nbformat raises assorted errors for unreadable files
        found["ValidationError"] = exc
    error = found.get("ValidationError")
    return None if error is None else _first_line(error)


def validate_notebook(content: bytes, what: str) -> None:
    """Refuse bytes that are not a notebook nbformat can read and validate: for content
    from elsewhere (a clone, a publication), never for a version being given back."""
    problem = notebook_problem(content)
    if problem is not None:
        raise CorruptVersion(f"{what} is not a valid notebook: {problem}")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def model_to_bytes(model: dict[str, Any]) -> bytes:
    """The bytes a file contents manager writes for a contents-API ``model``."""
    import nbformat

    content = model["content"]
    if model["type"] == "notebook":
        notebook = nbformat.from_dict(content)
        text: str = nbformat.writes(notebook, version=nbformat.NO_CONVERT)
        return text.encode("utf-8")
    if model.get("format") == "base64":
        return base64.b64decode(content)
    return str(content).encode("utf-8")


def bytes_to_model(path: str, content: bytes) -> dict[str, Any]:
    """A contents-API model whose save writes exactly ``content`` to ``path``.

    A notebook too is saved as a file: the contents manager then writes the bytes
    as they are, where a notebook model would be re-serialised (its formatting,
    key order and nbformat version changed) and signed if it claims to be trusted.
    """
    try:
        return {"type": "file", "format": "text", "content": content.decode("utf-8")}
    except UnicodeDecodeError:
        encoded = base64.b64encode(content).decode("ascii")
        return {"type": "file", "format": "base64", "content": encoded}
