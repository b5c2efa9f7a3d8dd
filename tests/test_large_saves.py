"""Large saves are streamed: hashed as the outbox copies them, read in chunks from the
outbox file by the store, and sent to S3 in parts. The figure for a 300 MB file
(peak memory) is ``python -m benchmarks.large_file_memory``.
"""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bookstore.archiving.outbox import IN_MEMORY_BYTES, Outbox
from bookstore.core.body import FileSlice
from bookstore.store.s3 import PART_BYTES
from tests.support.inprocess import LiveServer
from tests.support.moto_server import MotoServer, s3_config

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def large_notebook(size: int) -> bytes:
    """A valid notebook of about ``size`` bytes, most of them one text output."""
    text = os.urandom(size // 2).hex()
    cell = {
        "cell_type": "code",
        "execution_count": 1,
        "id": "large",
        "metadata": {},
        "outputs": [{"output_type": "stream", "name": "stdout", "text": text}],
        "source": "print(data)",
    }
    notebook = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(notebook).encode()


def test_a_large_entry_loads_as_a_slice_of_its_file_with_the_sha256_of_its_bytes(
    tmp_path: Path,
) -> None:
    content = os.urandom(IN_MEMORY_BYTES + 1)
    source = tmp_path / "big.bin"
    source.write_bytes(content)
    writer = Outbox(tmp_path / "outbox")
    entry = writer.add_file("big.bin", NOW, str(source))

    # The process that copied it knows its sha256; another one reads it in chunks.
    for outbox in (writer, Outbox(tmp_path / "outbox")):
        loaded = outbox.load(entry)
        assert isinstance(loaded.body, FileSlice)
        assert loaded.body.file == entry.outbox_file
        assert loaded.size == len(content)
        assert loaded.sha256 == hashlib.sha256(content).hexdigest()
        with loaded.body.file.open("rb") as stream:
            stream.seek(loaded.body.offset)
            assert stream.read() == content


def test_a_small_entry_loads_whole(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox")
    entry = outbox.add_bytes("small.ipynb", NOW, b"{}")
    loaded = outbox.load(entry)
    assert loaded.body == b"{}"
    assert loaded.sha256 == hashlib.sha256(b"{}").hexdigest()


@pytest.fixture
def bookstore_config(s3_bucket: str, moto_server: MotoServer) -> dict[str, Any]:
    return s3_config(s3_bucket, moto_server.endpoint_url)


async def test_a_checkpoint_of_a_large_notebook_reaches_s3_in_parts_byte_for_byte(
    live: LiveServer, moto_server: MotoServer, s3_bucket: str
) -> None:
    content = large_notebook(2 * PART_BYTES + 1)
    (live.root / "large.ipynb").write_bytes(content)

    answer = await live.api("POST", "api/contents/large.ipynb/checkpoints")
    assert answer.status_code == 201, answer.text
    await live.wait_archived(timeout=60)

    [version] = await live.versions("large.ipynb")
    assert version.size == len(content)
    assert version.sha256 == hashlib.sha256(content).hexdigest()
    with moto_server.client() as client:
        stored = client.get_object(Bucket=s3_bucket, Key=version.store_key)
        assert stored["Body"].read() == content
    assert stored["ETag"].strip('"').endswith("-3")  # sent in 3 parts
    served = await live.api("GET", "api/bookstore/content/1/large.ipynb")
    assert served.status_code == 200, served.text
    assert served.content == content
