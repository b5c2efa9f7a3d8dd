"""The outbox: each save's bytes, on local disk before the save is acknowledged.

An entry is one file, ``<UTC timestamp>-<owner>-<n>.save``: a JSON header line
(path, queued time in UTC, workspace) followed by the saved bytes. It is written to
``tmp/``, fsynced, and renamed into place, so an entry is either whole or absent.
It is removed only after its version is stored and indexed.

Several servers may share one directory (one user's servers share the default).
The owner in an entry's name is the server that wrote it, which holds the lease
``leases/<owner>`` (an exclusive ``flock``, released by the kernel when that process
ends, however it ends). A server archives its own entries; those of a server that
is gone, and those of earlier releases, it *claims* for its workspace by renaming
them to its own name, so exactly one server claims each.

An entry that can never be archived as it is (an unreadable header, a path no store
can hold) is set aside in ``failed/``, beside a ``.reason.json`` that says why. It
is never deleted; ``requeue`` puts it back for any server of its workspace to claim.

The outbox is bounded: a save that would take it past ``max_bytes``, or leave less
than ``min_free_bytes`` free on its disk, is refused with ``OutboxFull``. Content
equal to the entry already waiting for the same path is kept once.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import NamedTuple

from bookstore.core.body import FileSlice, chunks_of
from bookstore.core.errors import OutboxFull
from bookstore.core.keys import format_timestamp
from bookstore.core.record import ArchiveRecord, HashedRecord
from bookstore.store.durable import fsync_directory, replace_atomically

if sys.platform == "win32":
    import msvcrt
else:
    import fcntl

__all__ = [
    "IN_MEMORY_BYTES",
    "NO_LIMITS",
    "Claimed",
    "Outbox",
    "OutboxEntry",
    "OutboxLimits",
    "SetAside",
    "describe_size",
]

_SUFFIX = ".save"
_REASON = ".reason.json"
_CHUNK = 1 << 20
IN_MEMORY_BYTES = 8 << 20
"""Saves up to this size are read whole for archiving; larger ones are streamed."""
_HEADER_LIMIT = 1 << 16
_NAME = re.compile(
    r"(?P<stamp>\d{8}T\d{6}\.\d{6}Z)-(?P<owner>[0-9A-Za-z]+)-[0-9A-Za-z]+" + re.escape(_SUFFIX)
)
_UNFINISHED_AGE = 3600.0
"""Seconds after which a file left in ``tmp/`` by a server that is gone is removed."""
_REQUEUED = "requeued"
"""The owner of re-queued entries: it never holds a lease, so any server of the workspace
claims them."""
_WARNING_SHARE = 0.75
"""From this share of ``max_bytes`` on, the outbox warns that it is filling up."""


class OutboxEntry(NamedTuple):
    """A save waiting in the outbox; its bytes stay on disk until they are needed."""

    outbox_file: Path
    """The entry's own file in the outbox directory."""
    path: str
    """The notebook path that was saved, as the contents API names it."""
    queued_time: datetime


class OutboxLimits(NamedTuple):
    """How far the outbox may grow; the defaults set no limit."""

    max_bytes: int | None = None
    """The most bytes its files may hold, those set aside included."""
    min_free_bytes: int = 0
    """The bytes a new entry must leave free on the outbox's disk."""


NO_LIMITS = OutboxLimits()


class SetAside(NamedTuple):
    """A save that could not be archived as it is, kept in ``failed/``."""

    outbox_file: Path
    path: str | None
    """``None`` when the entry's header could not be read."""
    queued_time: datetime | None
    workspace: str | None
    reason: str
    set_aside_at: datetime


class Claimed(NamedTuple):
    """What one look at the outbox found for this server."""

    entries: list[OutboxEntry]
    """Entries taken over from servers that are gone, or from earlier releases, oldest first."""
    set_aside: list[SetAside]
    """Files found unreadable, and set aside."""


class _Header(NamedTuple):
    path: str
    queued_time: datetime
    workspace: str | None


class _Unreadable(ValueError):
    """A file in the outbox that is no entry bookstore wrote."""


class Outbox:
    """A directory of saves not yet archived, shared safely by any number of servers.

    ``workspace`` is the workspace this server archives into: it claims entries of
    that workspace, and those of earlier releases, which name none. With ``None`` it
    claims entries of any workspace (the command line only reads and re-queues).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        workspace: str | None = None,
        limits: OutboxLimits = NO_LIMITS,
    ) -> None:
        self.directory = Path(directory)
        self.workspace = workspace
        self.limits = limits
        self._tmp = self.directory / "tmp"
        self._failed = self.directory / "failed"
        self._leases = self.directory / "leases"
        self._names = itertools.count()
        self._lock = threading.Lock()
        self._owner = _new_owner()
        self._lease: int | None = None
        self._latest: dict[str, tuple[OutboxEntry, int]] = {}
        """The entry this process last wrote for each path, and its content's size."""
        self._sha256s: dict[str, str] = {}
        """The sha256 of each entry this process wrote, computed as it was copied."""
        self._used: int | None = None
        self._notes: dict[str, SetAside] = {}

    # -- keeping saves ---------------------------------------------------------------

    def add_file(self, path: str, queued_time: datetime, source: str) -> OutboxEntry:
        """Copy the file a save just wrote."""
        with open(source, "rb") as stream:

            def chunks() -> Iterator[bytes]:
                stream.seek(0)
                return iter(partial(stream.read, _CHUNK), b"")

            return self._keep(path, queued_time, os.fstat(stream.fileno()).st_size, chunks)

    def add_bytes(self, path: str, queued_time: datetime, content: bytes) -> OutboxEntry:
        """Keep bytes a contents manager will not write to a local file."""
        return self._keep(path, queued_time, len(content), lambda: iter((content,)))

    def _keep(
        self,
        path: str,
        queued_time: datetime,
        size: int,
        chunks: Callable[[], Iterator[bytes]],
    ) -> OutboxEntry:
        """Write an entry, unless the same content already waits for ``path``.

        Raises ``OutboxFull`` past the limits, other ``OSError``s when the disk fails.
        """
        kept = self._kept_already(path, size, chunks)
        if kept is not None:
            return kept
        self._hold_lease()
        header = _header_line(path, queued_time, self.workspace)
        self._check_room(len(header) + size)
        name = self._name_for(queued_time)
        temporary = self._tmp / name
        digest = hashlib.sha256()
        try:
            with open(temporary, "xb") as out:
                out.write(header)
                for chunk in chunks():
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
                written = out.tell()
            os.replace(temporary, self.directory / name)
        finally:
            temporary.unlink(missing_ok=True)
        fsync_directory(self.directory)
        entry = OutboxEntry(self.directory / name, path, queued_time)
        with self._lock:
            self._latest[path] = (entry, size)
            self._sha256s[name] = digest.hexdigest()
            if self._used is not None:
                self._used += written
        return entry

    def _kept_already(
        self, path: str, size: int, chunks: Callable[[], Iterator[bytes]]
    ) -> OutboxEntry | None:
        """The entry waiting for ``path`` if it holds this very content.

        Only an entry of the same size is read, and only until a byte differs: a
        changed notebook costs nothing here, an unchanged one a read instead of a write.
        """
        with self._lock:
            latest, its_size = self._latest.get(path, (None, -1))
        if latest is None or its_size != size:
            return None
        try:
            with open(latest.outbox_file, "rb") as waiting:
                waiting.readline(_HEADER_LIMIT + 1)
                same = all(waiting.read(len(chunk)) == chunk for chunk in chunks())
                return latest if same and not waiting.read(1) else None
        except FileNotFoundError:
            return None

    def _check_room(self, size: int) -> None:
        limit = self.limits.max_bytes
        used = self._usage()
        if limit is not None and used + size > limit:
            raise OutboxFull(
                f"the outbox {self.directory} holds {describe_size(used)} of saves, and "
                f"outbox_max_bytes allows {describe_size(limit)}"
            )
        free = shutil.disk_usage(self.directory).free
        if free - size < self.limits.min_free_bytes:
            raise OutboxFull(
                f"only {describe_size(free)} is free on the disk of the outbox "
                f"{self.directory}, and bookstore leaves outbox_min_free_bytes "
                f"({describe_size(self.limits.min_free_bytes)}) free for your files"
            )

    # -- size -------------------------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        """The bytes of the outbox's files when last measured (0 before that)."""
        with self._lock:
            return self._used or 0

    def warning(self) -> str | None:
        """A sentence when the outbox nears its quota, or its disk the free space kept."""
        limit, keep_free = self.limits
        used = self.used_bytes
        if limit is not None and used >= _WARNING_SHARE * limit:
            return (
                f"the outbox holds {describe_size(used)}, {used / limit:.0%} of "
                f"outbox_max_bytes ({describe_size(limit)}); at the limit new saves are not "
                "kept for history until the waiting ones are archived"
            )
        try:
            free = shutil.disk_usage(self.directory).free
        except OSError:
            return None
        if keep_free and free < 2 * keep_free:
            return (
                f"only {describe_size(free)} is free on the disk of the outbox; below "
                f"outbox_min_free_bytes ({describe_size(keep_free)}) new saves are not kept "
                "for history"
            )
        return None

    def _usage(self) -> int:
        with self._lock:
            if self._used is not None:
                return self._used
        return self._measure()

    def _measure(self) -> int:
        """Add up the bytes of every file in the outbox, including those set aside."""
        total = 0
        for directory in (self.directory, self._tmp, self._failed):
            try:
                with os.scandir(directory) as found:
                    for item in found:
                        try:
                            total += item.stat().st_size if item.is_file() else 0
                        except FileNotFoundError:
                            continue
            except (FileNotFoundError, NotADirectoryError):
                continue
        with self._lock:
            self._used = total
        return total

    # -- reading ----------------------------------------------------------------------

    def pending(self) -> list[OutboxEntry]:
        """Every entry waiting, whichever server owns it, oldest first (unreadable ones not)."""
        entries = []
        for file in self._entry_files():
            try:
                header = _read_header(file)
            except (OSError, _Unreadable):
                continue
            entries.append(OutboxEntry(file, header.path, header.queued_time))
        return sorted(entries, key=lambda entry: (entry.queued_time, entry.outbox_file.name))

    def load(self, entry: OutboxEntry) -> HashedRecord:
        """The entry's save, ready for the store; blocking, so run it off the event loop.

        A save larger than ``IN_MEMORY_BYTES`` stays in the entry's file, read in chunks
        as the store sends it; its sha256 is the one computed as it was copied, or, for
        an entry another process wrote, computed reading it in chunks.
        """
        with open(entry.outbox_file, "rb") as stream:
            offset = len(stream.readline(_HEADER_LIMIT + 1))
            size = os.fstat(stream.fileno()).st_size - offset
            if size <= IN_MEMORY_BYTES:
                content = stream.read()
                record = ArchiveRecord(entry.path, content, entry.queued_time)
                return HashedRecord.of(record)
        body = FileSlice(entry.outbox_file, offset, size)
        with self._lock:
            sha256 = self._sha256s.get(entry.outbox_file.name)
        if sha256 is None:
            digest = hashlib.sha256()
            for chunk in chunks_of(body):
                digest.update(chunk)
            sha256 = digest.hexdigest()
        return HashedRecord(entry.path, entry.queued_time, body, sha256)

    def read(self, entry: OutboxEntry) -> bytes:
        """The bytes the entry's save wrote; blocking."""
        with open(entry.outbox_file, "rb") as stream:
            stream.readline(_HEADER_LIMIT + 1)
            return stream.read()

    def remove(self, entry: OutboxEntry) -> None:
        """Forget an archived entry (another process may have removed it already)."""
        try:
            size = entry.outbox_file.stat().st_size
        except FileNotFoundError:
            size = 0
        entry.outbox_file.unlink(missing_ok=True)
        self._forget(entry.outbox_file, size)

    # -- servers sharing the directory ------------------------------------------------

    def claim(self) -> Claimed:
        """Take over the entries no live server owns, of this outbox's workspace.

        Entries of servers that are gone, re-queued ones and those of earlier
        releases are renamed to this server's name; files that cannot be read are
        set aside. Also measures the outbox.
        """
        self._hold_lease()
        owners: dict[str | None, list[Path]] = {}
        for file in self._entry_files():
            owner = _owner_of(file.name)
            if owner != self._owner:
                owners.setdefault(owner, []).append(file)
        claimed: list[OutboxEntry] = []
        set_aside: list[SetAside] = []
        for owner, files in owners.items():
            with self._gone(owner) as gone:
                if not gone:
                    continue
                for file in files:
                    taken = self._claim_one(file)
                    if isinstance(taken, OutboxEntry):
                        claimed.append(taken)
                    elif taken is not None:
                        set_aside.append(taken)
        if claimed:
            fsync_directory(self.directory)
        self._sweep()
        self._measure()
        claimed.sort(key=lambda entry: (entry.queued_time, entry.outbox_file.name))
        return Claimed(claimed, set_aside)

    def _claim_one(self, file: Path) -> OutboxEntry | SetAside | None:
        try:
            header = _read_header(file)
        except FileNotFoundError:
            return None  # another server claimed it first
        except (OSError, _Unreadable) as exc:
            return self._set_aside(file, f"it cannot be read as an outbox entry ({exc})", None)
        if self.workspace is not None and header.workspace not in (None, self.workspace):
            return None
        target = self.directory / self._name_for(header.queued_time)
        try:
            os.rename(file, target)
        except FileNotFoundError:
            return None
        return OutboxEntry(target, header.path, header.queued_time)

    @contextmanager
    def _gone(self, owner: str | None) -> Iterator[bool]:
        """Whether ``owner`` has no live server; its lease is held while its entries are
        claimed, so two servers never split them, and then removed."""
        if owner is None:
            yield True
            return
        lease = self._leases / owner
        try:
            descriptor = os.open(lease, os.O_RDWR)
        except FileNotFoundError:
            yield True
            return
        try:
            if not _try_lock(descriptor):
                yield False
                return
            yield True
            with suppress(OSError):  # gone already; or Windows, which keeps open files
                lease.unlink()
        finally:
            os.close(descriptor)

    def _hold_lease(self) -> None:
        """Take this server's lease before any file bears its name."""
        with self._lock:
            if self._lease is not None:
                return
            self._tmp.mkdir(parents=True, exist_ok=True)
            self._leases.mkdir(exist_ok=True)
            lease = self._leases / self._owner
            while self._lease is None:
                descriptor = os.open(lease, os.O_RDWR | os.O_CREAT, 0o600)
                if not _try_lock(descriptor):
                    os.close(descriptor)
                    raise OSError(f"the outbox lease {lease} is taken")
                if _same_file(descriptor, lease):
                    self._lease = descriptor
                else:  # swept away as a dead server's between open and lock: again
                    os.close(descriptor)

    def _sweep(self) -> None:
        """Remove what servers that are gone left: leases, and files never finished."""
        for lease in _files_in(self._leases):
            if lease.name != self._owner:
                with self._gone(lease.name):
                    pass
        for unfinished in _files_in(self._tmp):
            owner = _owner_of(unfinished.name)
            if owner == self._owner or _age(unfinished) < _UNFINISHED_AGE:
                continue  # being written, perhaps by a release that takes no lease
            with self._gone(owner) as gone:
                if gone:
                    unfinished.unlink(missing_ok=True)

    def close(self) -> None:
        """Give up this server's lease: its entries left are for any server to claim."""
        with self._lock:
            if self._lease is None:
                return
            (self._leases / self._owner).unlink(missing_ok=True)
            os.close(self._lease)
            self._lease = None
            self._owner = _new_owner()
            self._latest.clear()

    # -- saves set aside --------------------------------------------------------------

    def set_aside(self, entry: OutboxEntry, reason: str) -> SetAside | None:
        """Move an entry that can never be archived as it is to ``failed/``, with
        ``reason``; ``None`` when it is gone already."""
        header = _Header(entry.path, entry.queued_time, self.workspace)
        return self._set_aside(entry.outbox_file, reason, header)

    def _set_aside(self, file: Path, reason: str, header: _Header | None) -> SetAside | None:
        self._failed.mkdir(parents=True, exist_ok=True)
        item = SetAside(
            self._failed / file.name,
            header.path if header else None,
            header.queued_time if header else None,
            header.workspace if header else None,
            reason,
            datetime.now(timezone.utc),
        )
        note = _note_of(item.outbox_file)
        replace_atomically(note, json.dumps(_note(item)).encode())
        try:
            os.rename(file, item.outbox_file)
        except FileNotFoundError:
            note.unlink(missing_ok=True)
            return None
        fsync_directory(self._failed)
        fsync_directory(self.directory)
        self._forget(file, 0)
        return item

    def set_aside_saves(self) -> list[SetAside]:
        """Every save set aside, oldest set aside first."""
        try:
            files = sorted(self._failed.glob(f"*{_SUFFIX}"))
        except OSError:
            files = []
        with self._lock:
            known = dict(self._notes)
        found = {file.name: known.get(file.name) or _read_note(file) for file in files}
        with self._lock:
            self._notes = found
        return sorted(found.values(), key=lambda item: (item.set_aside_at, item.outbox_file.name))

    def requeue(self, items: Iterable[SetAside]) -> int:
        """Put saves set aside back in the outbox, for a server of their workspace to
        claim (a running server within a few seconds); how many were put back."""
        count = 0
        for item in items:
            match = _NAME.match(item.outbox_file.name)
            moment = item.queued_time or item.set_aside_at
            stamp = match["stamp"] if match else format_timestamp(moment)
            target = self.directory / f"{stamp}-{_REQUEUED}-{secrets.token_hex(6)}{_SUFFIX}"
            try:
                os.rename(item.outbox_file, target)
            except FileNotFoundError:
                continue
            _note_of(item.outbox_file).unlink(missing_ok=True)
            count += 1
        if count:
            fsync_directory(self.directory)
            fsync_directory(self._failed)
        return count

    # -- helpers ----------------------------------------------------------------------

    def _entry_files(self) -> list[Path]:
        return [file for file in _files_in(self.directory) if file.name.endswith(_SUFFIX)]

    def _name_for(self, queued_time: datetime) -> str:
        return f"{format_timestamp(queued_time)}-{self._owner}-{next(self._names):08d}{_SUFFIX}"

    def _forget(self, file: Path, size: int) -> None:
        with self._lock:
            self._sha256s.pop(file.name, None)
            for path, (entry, _) in list(self._latest.items()):
                if entry.outbox_file == file:
                    del self._latest[path]
            if self._used is not None:
                self._used = max(0, self._used - size)


def _new_owner() -> str:
    return f"{os.getpid()}x{secrets.token_hex(4)}"


def _owner_of(name: str) -> str | None:
    match = _NAME.fullmatch(name)
    return match["owner"] if match else None


def _files_in(directory: Path) -> list[Path]:
    """The files of ``directory``, by name; none if it does not exist."""
    try:
        with os.scandir(directory) as found:
            return sorted(Path(item.path) for item in found if item.is_file())
    except FileNotFoundError:
        return []


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(descriptor).st_ino
    except FileNotFoundError:
        return False


def _age(file: Path) -> float:
    try:
        return time.time() - file.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _try_lock(descriptor: int) -> bool:
    """Take an exclusive lock on an open file, if no other open file holds it."""
    try:
        if sys.platform == "win32":
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        else:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return False
    return True


def _header_line(path: str, queued_time: datetime, workspace: str | None) -> bytes:
    header: dict[str, str] = {
        "path": path,
        "queued_time": queued_time.astimezone(timezone.utc).isoformat(),
    }
    if workspace is not None:
        header["workspace"] = workspace
    return json.dumps(header).encode() + b"\n"


def _read_header(file: Path) -> _Header:
    """An entry's header; ``_Unreadable`` when the file is no entry bookstore wrote."""
    with open(file, "rb") as stream:
        line = stream.readline(_HEADER_LIMIT + 1)
    if not line.endswith(b"\n"):
        raise _Unreadable("no header line")
    try:
        header = json.loads(line)
        path, queued, workspace = header["path"], header["queued_time"], header.get("workspace")
        queued_time = datetime.fromisoformat(queued)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise _Unreadable(f"{type(exc).__name__}: {exc}") from None
    if not isinstance(path, str) or not isinstance(workspace, (str, type(None))):
        raise _Unreadable("its header names no path")
    if queued_time.tzinfo is None:
        raise _Unreadable("its time has no time zone")
    return _Header(path, queued_time, workspace)


def _note_of(file: Path) -> Path:
    return file.with_name(file.name + _REASON)


def _note(item: SetAside) -> dict[str, str | None]:
    return {
        "path": item.path,
        "queued_time": item.queued_time.isoformat() if item.queued_time else None,
        "workspace": item.workspace,
        "reason": item.reason,
        "set_aside_at": item.set_aside_at.isoformat(),
    }


def _read_note(file: Path) -> SetAside:
    """What was recorded when ``file`` was set aside (little, if the note is lost)."""
    try:
        note = json.loads(_note_of(file).read_bytes())
        return SetAside(
            file,
            note["path"],
            datetime.fromisoformat(note["queued_time"]) if note["queued_time"] else None,
            note["workspace"],
            note["reason"],
            datetime.fromisoformat(note["set_aside_at"]),
        )
    except (OSError, ValueError, TypeError, KeyError):
        return SetAside(file, None, None, None, "no reason was recorded", _modified(file))


def _modified(file: Path) -> datetime:
    try:
        return datetime.fromtimestamp(file.stat().st_mtime, timezone.utc)
    except OSError:
        return datetime.now(timezone.utc)


def describe_size(size: int) -> str:
    """A byte count for people: ``812 bytes``, ``1.5 MB``, ``2.1 GB`` (powers of 1,000)."""
    amount = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if amount < 1000:
            return f"{size} bytes" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1000
    return f"{amount:.1f} TB"
