"""The save hooks on their own: what reaches the outbox, for file and non-file managers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import nbformat

from bookstore.archiving.outbox import Outbox, OutboxEntry, OutboxLimits
from bookstore.core.notebook import model_to_bytes
from bookstore.server.save_hooks import SaveHooks
from tests.support.jupyter_process import notebook


class KeyValueContentsManager:
    """Stands in for a contents manager with no local files (S3Contents, pgcontents)."""

    def __init__(self) -> None:
        self._pre_save_hooks: list[Any] = []
        self._post_save_hooks: list[Any] = []

    def register_pre_save_hook(self, hook: Any) -> None:
        self._pre_save_hooks.append(hook)

    def register_post_save_hook(self, hook: Any) -> None:
        self._post_save_hooks.append(hook)

    def save(self, model: dict[str, Any], path: str) -> None:
        for hook in self._pre_save_hooks:
            hook(model=model, path=path, contents_manager=self)


def make_hooks(
    tmp_path: Path, types: tuple[str, ...] = ("notebook",)
) -> tuple[SaveHooks, list[OutboxEntry]]:
    submitted: list[OutboxEntry] = []
    hooks = SaveHooks(Outbox(tmp_path / "outbox"), submitted.append, types, logging.getLogger("t"))
    return hooks, submitted


def test_without_local_files_the_pre_save_hook_keeps_the_serialised_notebook(
    tmp_path: Path,
) -> None:
    hooks, submitted = make_hooks(tmp_path)
    manager = KeyValueContentsManager()
    hooks.install(manager)
    hooks.install(manager)
    assert len(manager._pre_save_hooks) == 1

    model = {"type": "notebook", "format": "json", "content": notebook("kv")}
    manager.save(model, "/kv.ipynb")

    [entry] = submitted
    assert entry.path == "kv.ipynb"
    content = hooks.outbox.read(entry)
    assert content == model_to_bytes(model)
    assert nbformat.reads(content.decode(), as_version=4).cells[0].source == "print('kv', 0)"


def test_types_not_configured_are_not_kept(tmp_path: Path) -> None:
    hooks, submitted = make_hooks(tmp_path)
    manager = KeyValueContentsManager()
    hooks.install(manager)
    manager.save({"type": "file", "format": "text", "content": "x"}, "notes.txt")
    manager.save({"type": "directory", "content": None}, "dir")
    assert submitted == []


def test_save_times_strictly_increase_so_keys_never_collide(tmp_path: Path) -> None:
    hooks, submitted = make_hooks(tmp_path, ("file",))
    manager = KeyValueContentsManager()
    hooks.install(manager)
    for n in range(200):
        manager.save({"type": "file", "format": "text", "content": str(n)}, "same.txt")
    times = [entry.queued_time for entry in submitted]
    assert times == sorted(set(times))
    assert [entry.outbox_file.name for entry in hooks.outbox.pending()] == [
        e.outbox_file.name for e in submitted
    ]


def test_an_outbox_that_cannot_be_written_does_not_fail_the_save(
    tmp_path: Path, caplog: Any
) -> None:
    (tmp_path / "outbox").write_text("a file where the outbox directory should be")
    hooks, submitted = make_hooks(tmp_path, ("file",))
    manager = KeyValueContentsManager()
    hooks.install(manager)
    manager.save({"type": "file", "format": "text", "content": "x"}, "a.txt")
    assert submitted == []
    assert "could not keep this save for archiving" in caplog.text


def test_a_save_of_dot_slash_a_path_is_kept_as_that_path(tmp_path: Path) -> None:
    """Jupyter saves ``./dot.ipynb`` as ``dot.ipynb``; its version is of ``dot.ipynb`` too."""
    hooks, submitted = make_hooks(tmp_path)
    manager = KeyValueContentsManager()
    hooks.install(manager)
    manager.save({"type": "notebook", "format": "json", "content": notebook("dot")}, "./dot.ipynb")
    manager.save({"type": "notebook", "format": "json", "content": notebook("b")}, "a/./b.ipynb")
    assert [entry.path for entry in submitted] == ["dot.ipynb", "a/b.ipynb"]


def test_saves_the_outbox_cannot_keep_are_counted_and_said_in_words(
    tmp_path: Path, caplog: Any
) -> None:
    submitted: list[OutboxEntry] = []
    small = Outbox(tmp_path / "outbox", workspace="w", limits=OutboxLimits(max_bytes=300))
    hooks = SaveHooks(small, submitted.append, ("file",), logging.getLogger("t"))
    manager = KeyValueContentsManager()
    hooks.install(manager)
    for n in range(3):
        manager.save({"type": "file", "format": "text", "content": f"{n}" * 100}, f"{n}.txt")

    assert len(submitted) == 1
    assert hooks.not_kept is not None
    assert hooks.not_kept.saves == 2
    assert str(hooks.not_kept).startswith("2 saves were not kept for history")
    assert "outbox_max_bytes allows 300 bytes" in str(hooks.not_kept)
    assert caplog.text.count("could not keep this save for archiving") == 2
