"""Peak memory of a real ``jupyter server`` archiving one large file.

What is measured: the server process's peak resident memory (``VmHWM``, read from
the kernel) just before a create-checkpoint of a ``--size-mb`` notebook written to
its root, and again once that version is archived. The difference is what
archiving the file cost in memory; the baseline is the same process's peak
before, in the same run. The checkpoint copies the file into the outbox in
chunks, the archiver hashes and sends it in chunks (multipart to S3 with
``--storage s3``), and the archived object is checked byte for byte.

Target: at most +64 MB for a 300 MB file.

Run: ``python -m benchmarks.large_file_memory`` (``--size-mb 50`` for a quick run).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

from benchmarks._common import code_fingerprint, machine_line
from tests.support.jupyter_process import JupyterServer
from tests.support.moto_server import MotoServer, s3_env

TARGET_EXTRA_MB = 64
_MB = 1 << 20


def peak_mb(pid: int) -> float:
    """The process's peak resident memory so far, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("the kernel reports no VmHWM")


def write_notebook(path: Path, size: int) -> str:
    """A valid notebook of ``size`` bytes (one long text output); its sha256."""
    head = b'{"cells": [{"cell_type": "code", "execution_count": 1, "id": "big", '
    head += b'"metadata": {}, "outputs": [{"name": "stdout", "output_type": "stream", "text": "'
    tail = b'"}], "source": "print(data)"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}\n'
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for piece in (head, *_text(size - len(head) - len(tail)), tail):
            digest.update(piece)
            out.write(piece)
    return digest.hexdigest()


def _text(size: int) -> list[bytes]:
    """``size`` bytes of hex text in 1 MB pieces (the same piece again: cheap to make)."""
    piece = os.urandom(_MB // 2).hex().encode()
    return [piece] * (size // _MB) + [piece[: size % _MB]]


def run(args: argparse.Namespace) -> bool:
    print(
        f"large file memory: {code_fingerprint()} ({args.storage} store), "
        f"{args.size_mb} MB notebook\n{machine_line()}",
        flush=True,
    )
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.workdir)))
        env: dict[str, str] = {}
        if args.storage == "s3":
            moto = stack.enter_context(MotoServer(keep_state=False))
            moto.make_bucket("bench-large-file")
            env = s3_env("bench-large-file", moto.endpoint_url)
        server = stack.enter_context(JupyterServer(workdir / "server", env=env))
        server.wait_archived()
        sha256 = write_notebook(server.root / "large.ipynb", args.size_mb * _MB)
        assert server.process is not None
        before = peak_mb(server.process.pid)
        answer = server.api("POST", "/api/contents/large.ipynb/checkpoints")
        if answer.status_code != 201:
            raise SystemExit(f"create-checkpoint failed: {answer.status_code} {answer.text}")
        server.wait_archived(timeout=args.timeout)
        after = peak_mb(server.process.pid)
        [version] = server.api("GET", "/api/bookstore/versions/large.ipynb").json()["versions"]
        stored = server.api("GET", "/api/bookstore/content/1/large.ipynb").content
    if version["sha256"] != sha256 or hashlib.sha256(stored).hexdigest() != sha256:
        raise SystemExit("the archived version differs from the file")
    extra = after - before
    print(f"peak before the checkpoint: {before:,.0f} MB")
    print(f"peak once it was archived:  {after:,.0f} MB")
    print(f"archiving {args.size_mb} MB cost +{extra:,.0f} MB (target: +{TARGET_EXTRA_MB} MB)")
    return extra <= TARGET_EXTRA_MB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=300)
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--workdir", default=None, help="where the temporary files go")
    raise SystemExit(0 if run(parser.parse_args()) else 1)


if __name__ == "__main__":
    main()
