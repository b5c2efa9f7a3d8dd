"""Build and parse store keys and object metadata, side by side. Pure functions, no I/O.

A version's key is ``<prefix>/<encoded path>/@<timestamp><suffix>``::

    workspace/reports/Q1 summary.ipynb/@20261125T175806.123456Z.ipynb

* ``<timestamp>`` is the save's UTC time, fixed width, so one path's keys sort
  in save order and a retried upload of the same record writes the same key.
* ``<encoded path>`` is the notebook path with ``%`` and ``@`` percent-encoded,
  so ``@`` starts a component only where a version begins: the prefix of
  ``a.ipynb`` (``…/a.ipynb/@``) never lists ``a.ipynb2`` or ``a.ipynb/b.ipynb``.
* A segment whose encoded form is longer than a file name may be (255 bytes) is
  cut into pieces of at most that length, each but the last ending in ``%+``
  (which encoding never writes), so the local store can hold it and the key still
  names its path exactly. ``<suffix>`` is the path's extension unless that is
  over 200 bytes long (then none).
* A key longer than S3 allows (1,024 bytes) is refused with ``InvalidPath``: no
  store can hold it, and a shorter form could not be read back into its path.

Every version object also says what it is in its metadata (path, number, save
time, sha256), so the index can be rebuilt from a listing of the store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from posixpath import splitext
from typing import NamedTuple
from urllib.parse import quote, unquote

from bookstore.core.errors import InvalidPath
from bookstore.core.record import HashedRecord

__all__ = [
    "MAX_KEY_BYTES",
    "VERSION_NUMBER",
    "RecordedVersion",
    "VersionKey",
    "annotations_key",
    "change_key",
    "format_timestamp",
    "normalize_path",
    "parse_annotations_key",
    "parse_change_key",
    "parse_timestamp",
    "parse_version_key",
    "parse_version_metadata",
    "path_prefix",
    "published_key",
    "published_metadata",
    "resolve_prefix",
    "version_key",
    "version_metadata",
    "workspace_root",
]

_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S.%fZ"
VERSION_NUMBER = r"[1-9][0-9]{0,17}"
"""A version number as a URL or checkpoint id spells it: few enough digits for a 64-bit column."""
_VERSION_MARK = "/@"
MAX_KEY_BYTES = 1024
"""The longest key, in UTF-8 bytes, that every store holds (S3's limit)."""
_SEGMENT_BYTES = 255
"""The longest key segment: a file name, in the local store (255 bytes on common systems)."""
_SUFFIX_BYTES = 200
"""The longest extension a key repeats: room for ``@<timestamp>`` and a store's ``.json``."""
_CONTINUED = "%+"
"""Ends each piece but the last of a segment cut in pieces; ``_encode`` writes ``%`` only
as ``%25`` or ``%40`` otherwise."""
_ESCAPES = {"%": "%25", "@": "%40"}
_ENCODED = re.compile(r"(?:[^%@]|%25|%40)*")
_ANNOTATIONS = "annotations.json"
_CHANGES = "@changes/"
"""Where a workspace keeps its renames and copies: ``@`` never starts an encoded segment."""
_PARTS = "@parts/"
"""Where a workspace keeps the cell parts its packed versions share, by sha256."""
_PART_NAME = re.compile(r"(?P<epoch>0|[1-9][0-9]{0,17})/(?P<sha256>[0-9a-f]{64})\.zst")
_CHANGE_NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{16}\.json")
USERNAME_FIELD = "{username}"
_KEY_TAIL = re.compile(r"/@(?P<stamp>\d{8}T\d{6}\.\d{6}Z)(?P<suffix>[^/]*)\Z")


class VersionKey(NamedTuple):
    """What a version key says: whose version it is and when it was saved."""

    path: str
    queued_time: datetime


def normalize_path(path: str) -> str:
    """The canonical form of a notebook path, or ``InvalidPath`` if it could escape.

    Leading and trailing slashes are dropped (the contents API sends both forms);
    empty, ``.`` and ``..`` components and NUL are refused rather than resolved,
    because a path that needs resolving did not come from a contents manager.
    A backslash is an ordinary character in a POSIX file name, and is kept.
    """
    stripped = path.strip("/")
    parts = stripped.split("/")
    if not stripped or any(part in ("", ".", "..") for part in parts):
        raise InvalidPath(f"{path!r} is not a notebook path relative to the server root")
    if "\0" in stripped:
        raise InvalidPath(f"{path!r} contains a NUL character")
    try:
        stripped.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPath(f"{path!r} is not valid Unicode (a name no store can hold)") from None
    return stripped


def _encode(path: str) -> str:
    return "/".join(_encode_segment(segment) for segment in path.split("/"))


def _encode_segment(segment: str) -> str:
    """One path segment, escaped, and cut in pieces if it is longer than a file name."""
    escaped = [_ESCAPES.get(char, char) for char in segment]
    if len("".join(escaped).encode("utf-8")) <= _SEGMENT_BYTES:
        return "".join(escaped)
    pieces, piece, size = [], "", 0
    for part in escaped:  # never cut inside an escape or a character
        width = len(part.encode("utf-8"))
        if size + width > _SEGMENT_BYTES - len(_CONTINUED):
            pieces.append(piece)
            piece, size = "", 0
        piece, size = piece + part, size + width
    return f"{_CONTINUED}/".join([*pieces, piece])


def _decode(encoded: str) -> str | None:
    """The path ``_encode`` made ``encoded`` from, or ``None`` if it made no such text."""
    whole = encoded.replace(f"{_CONTINUED}/", "")
    if not _ENCODED.fullmatch(whole):
        return None
    return whole.replace("%40", "@").replace("%25", "%")


def _suffix(path: str) -> str:
    """The extension a version key repeats: the path's own, unless it is very long."""
    extension = splitext(path)[1]
    return extension if len(extension.encode("utf-8")) <= _SUFFIX_BYTES else ""


def workspace_root(workspace: str) -> str:
    """What every key in ``workspace`` starts with ('' for the top of the store)."""
    root = workspace.strip("/")
    return f"{root}/" if root else ""


def path_prefix(workspace: str, path: str) -> str:
    """The key prefix under which exactly the versions of ``path`` are stored."""
    return f"{workspace_root(workspace)}{_encode(normalize_path(path))}{_VERSION_MARK}"


def annotations_key(workspace: str, path: str) -> str:
    """Where the labels and pins of ``path``'s versions are kept, beside its versions.

    ``@annotations.json`` is no timestamp, so it never parses as a version key.
    """
    return f"{path_prefix(workspace, path)}{_ANNOTATIONS}"


def parse_annotations_key(workspace: str, key: str) -> str | None:
    """The path whose annotations ``key`` holds, or ``None``."""
    root = workspace_root(workspace)
    tail = f"{_VERSION_MARK}{_ANNOTATIONS}"
    if not key.startswith(root) or not key.endswith(tail):
        return None
    path = _decode(key[len(root) : -len(tail)])
    if not path:
        return None
    try:
        return normalize_path(path)
    except InvalidPath:
        return None


def change_key(workspace: str, changed_at: datetime, token: str) -> str:
    """Where a rename or copy made at ``changed_at`` is kept; ``token`` (16 hex digits)
    tells apart changes made in one microsecond. Never a version or annotations key."""
    return f"{workspace_root(workspace)}{_CHANGES}{format_timestamp(changed_at)}-{token}.json"


def parse_change_key(workspace: str, key: str) -> bool:
    """Whether ``key`` is where ``workspace`` keeps one of its renames or copies."""
    head = f"{workspace_root(workspace)}{_CHANGES}"
    return key.startswith(head) and _CHANGE_NAME.fullmatch(key[len(head) :]) is not None


def part_key(workspace: str, epoch: int, sha256: str) -> str:
    """Where the part with this sha256 is kept for versions written in ``epoch``: in its
    workspace, never shared across (``docs/storage.md``)."""
    return f"{workspace_root(workspace)}{_PARTS}{epoch}/{sha256}.zst"


def parse_part_key(workspace: str, key: str) -> tuple[int, str] | None:
    """The epoch and sha256 of the part kept at ``key``; ``None`` if ``key`` keeps no part."""
    head = f"{workspace_root(workspace)}{_PARTS}"
    match = _PART_NAME.fullmatch(key[len(head) :]) if key.startswith(head) else None
    if match is None:
        return None
    return int(match["epoch"]), match["sha256"]


def parts_root(workspace: str) -> str:
    """The prefix of every part the workspace keeps, and of its epochs object."""
    return f"{workspace_root(workspace)}{_PARTS}"


def epochs_key(workspace: str) -> str:
    """Where the workspace records how long its part epochs are."""
    return f"{workspace_root(workspace)}{_PARTS}epochs.json"


def resolve_prefix(template: str, username: str) -> str:
    """A key prefix with ``{username}`` filled in, without surrounding slashes.

    The name is percent-encoded like a URL path segment, ``/`` included, so no
    user name can point into another user's prefix or step out of its own.
    """
    if USERNAME_FIELD not in template:
        return template.strip("/")
    segment = quote(username, safe="@+-_.~")
    if segment in ("", ".", ".."):
        raise InvalidPath(f"{username!r} cannot name a workspace")
    return template.replace(USERNAME_FIELD, segment).strip("/")


def published_key(published_prefix: str, path: str) -> str:
    """Where the published copy of ``path`` lives: one key per path, replaced on publish."""
    return f"{workspace_root(published_prefix)}{normalize_path(path)}"


def version_key(workspace: str, path: str, queued_time: datetime) -> str:
    """The key of the version of ``path`` saved at ``queued_time`` (aware, any zone).

    Raises ``InvalidPath`` when the key would be longer than stores allow.
    """
    key = f"{path_prefix(workspace, path)}{format_timestamp(queued_time)}{_suffix(path)}"
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise InvalidPath(
            f"its store key would be {size:,} bytes, and stores hold keys of at most "
            f"{MAX_KEY_BYTES:,} bytes; a shorter name or folder path is archived"
        )
    return key


def format_timestamp(moment: datetime) -> str:
    """A fixed-width UTC timestamp that sorts as time does (``20261125T175806.123456Z``)."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(timezone.utc).strftime(_TIMESTAMP_FORMAT)


def parse_timestamp(stamp: str) -> datetime:
    """The moment a ``format_timestamp`` string names; ``ValueError`` if it names none."""
    return datetime.strptime(stamp, _TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)


def parse_version_key(workspace: str, key: str) -> VersionKey | None:
    """The path and save time a key names, or ``None`` if it is not a version key."""
    root = workspace_root(workspace)
    match = _KEY_TAIL.search(key)
    if not key.startswith(root) or match is None:
        return None
    path = _decode(key[len(root) : match.start()])
    # Keys written before long extensions were left out repeat them all the same.
    if not path or match["suffix"] not in (_suffix(path), splitext(path)[1]):
        return None
    try:
        normalize_path(path)
    except InvalidPath:
        return None
    return VersionKey(path, parse_timestamp(match["stamp"]))


# -- object metadata -------------------------------------------------------------
# S3 user metadata is ASCII, so paths are percent-encoded.

_PATH = "bookstore-path"
_NUMBER = "bookstore-version"
_QUEUED_TIME = "bookstore-queued-time"
_SHA256 = "bookstore-sha256"
_FORMAT = "bookstore-format"
"""How a version object holds its bytes: absent for whole bytes (every earlier release)."""
_SIZE = "bookstore-size"
"""The size of the bytes that were saved, when the object holds them otherwise."""
_PUBLISHED_AT = "bookstore-published-at"


class RecordedVersion(NamedTuple):
    """What a version object's metadata says of it; ``None`` where it says nothing."""

    path: str | None
    sha256: str | None
    number: int | None
    format: str | None = None
    """How the object holds the bytes (``None``: whole, as saved)."""
    size: int | None = None
    """The size of the bytes saved, when the object's own size is not it."""


def version_metadata(hashed: HashedRecord, number: int, form: str | None = None) -> dict[str, str]:
    """What a version object says about itself, so the index can be rebuilt from a listing;
    ``form`` names how it holds the bytes, when not whole."""
    metadata = {
        _PATH: quote(hashed.filepath, safe="/"),
        _NUMBER: str(number),
        _QUEUED_TIME: hashed.queued_time.isoformat(),
        _SHA256: hashed.sha256,
    }
    if form is not None:
        metadata |= {_FORMAT: form, _SIZE: str(hashed.size)}
    return metadata


def with_format(metadata: Mapping[str, str], form: str, size: int) -> dict[str, str]:
    """A version's metadata, saying it now holds its ``size`` bytes in ``form``."""
    return {**metadata, _FORMAT: form, _SIZE: str(size)}


def parse_version_metadata(metadata: Mapping[str, str]) -> RecordedVersion:
    """The path, sha256 and version number a version object was written with.

    The path tells whose an object is when workspaces nest: under ``team``, the key
    ``team/lab/x.ipynb/@...`` reads as the path ``lab/x.ipynb``, but an object the
    workspace ``team/lab`` wrote says its path is ``x.ipynb``.
    """
    path, number = metadata.get(_PATH), metadata.get(_NUMBER, "")
    size = metadata.get(_SIZE, "")
    return RecordedVersion(
        unquote(path) if path is not None else None,
        metadata.get(_SHA256),
        int(number) if re.fullmatch(VERSION_NUMBER, number) else None,
        metadata.get(_FORMAT),
        int(size) if size.isdigit() else None,
    )


def published_metadata(path: str, sha256: str, published_at: datetime) -> dict[str, str]:
    """What a published copy says about itself."""
    return {
        _PATH: quote(path, safe="/"),
        _SHA256: sha256,
        _PUBLISHED_AT: published_at.isoformat(),
    }
