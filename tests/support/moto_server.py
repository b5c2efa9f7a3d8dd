"""A real moto S3 server in a subprocess, for tests that talk S3 over HTTP.

``stop()`` kills the process, so clients get "connection refused" exactly as
when a real endpoint goes down; ``start()`` brings it back on the same port.
moto keeps its state in memory, so a restart would lose every bucket and
object: to keep them, the server runs with moto's request recorder on
(``MOTO_ENABLE_RECORDING``) and ``start()`` replays the recording into the
fresh process (``/moto-api/recorder/replay-recording``). Pass
``keep_state=False`` to restart empty instead.

moto accepts any credentials until told otherwise; ``enforce_auth()`` turns
on its IAM check, under which the dummy credentials are refused.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import boto3
import requests

from bookstore.store.s3 import S3Store
from tests.support.stored import as_read

__all__ = [
    "ACCESS_KEY_ID",
    "REGION",
    "SECRET_ACCESS_KEY",
    "MotoServer",
    "free_port",
    "s3_config",
    "s3_env",
]

ACCESS_KEY_ID = "testing"
SECRET_ACCESS_KEY = "testing"
REGION = "us-east-1"

_HOST = "127.0.0.1"


def s3_env(
    bucket: str,
    endpoint_url: str,
    *,
    access_key_id: str = ACCESS_KEY_ID,
    secret_access_key: str = SECRET_ACCESS_KEY,
) -> dict[str, str]:
    """The ``BOOKSTORE_*`` variables that point a server, or the CLI, at ``bucket``."""
    return {
        "BOOKSTORE_STORAGE": "s3",
        "BOOKSTORE_S3_BUCKET": bucket,
        "BOOKSTORE_S3_ENDPOINT_URL": endpoint_url,
        "BOOKSTORE_S3_REGION_NAME": REGION,
        "BOOKSTORE_S3_ACCESS_KEY_ID": access_key_id,
        "BOOKSTORE_S3_SECRET_ACCESS_KEY": secret_access_key,
    }


def clone_config(bucket: str, endpoint_url: str, clone_dir: Path) -> dict[str, Any]:
    """Settings that archive locally and allow clones from ``bucket`` and ``clone_dir``."""
    return {
        "s3_endpoint_url": endpoint_url,
        "s3_region_name": REGION,
        "s3_access_key_id": ACCESS_KEY_ID,
        "s3_secret_access_key": SECRET_ACCESS_KEY,
        "clone_s3_buckets": [bucket],
        "fs_clone_dir": str(clone_dir),
    }


def s3_config(bucket: str, endpoint_url: str) -> dict[str, Any]:
    """The same settings as ``c.BookstoreSettings`` configuration, for an in-process server."""
    return {
        "storage": "s3",
        "s3_bucket": bucket,
        "s3_endpoint_url": endpoint_url,
        "s3_region_name": REGION,
        "s3_access_key_id": ACCESS_KEY_ID,
        "s3_secret_access_key": SECRET_ACCESS_KEY,
    }


def free_port() -> int:
    """A loopback port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class MotoServer:
    """One moto server process on a fixed loopback port, stoppable and restartable."""

    def __init__(self, *, keep_state: bool = True, start_timeout: float = 30.0) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://{_HOST}:{self.port}"
        self.keep_state = keep_state
        self.start_timeout = start_timeout
        self._workdir = tempfile.TemporaryDirectory(prefix="moto-server-")
        self._recording = Path(self._workdir.name) / "recording.jsonl"
        self._log_path = Path(self._workdir.name) / "server.log"
        self._log: IO[bytes] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server (again) on the same port and wait until it answers.

        After a ``stop()``, with ``keep_state``, the recorded requests are replayed
        so buckets and objects are back as they were.
        """
        if self.running:
            return
        env = dict(os.environ)
        if self.keep_state:
            env["MOTO_ENABLE_RECORDING"] = "true"
            env["MOTO_RECORDER_FILEPATH"] = str(self._recording)
        self._log = self._log_path.open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", _HOST, "-p", str(self.port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_until_ready()
            if self.keep_state and self._recording.exists():
                response = requests.post(
                    f"{self.endpoint_url}/moto-api/recorder/replay-recording", timeout=60
                )
                response.raise_for_status()
        except BaseException:
            self.stop()
            raise

    def _wait_until_ready(self) -> None:
        """Poll ``/moto-api/`` until it answers, the process dies, or the deadline passes."""
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                if requests.get(f"{self.endpoint_url}/moto-api/", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"moto did not answer on {self.endpoint_url} within "
                    f"{self.start_timeout}s:\n{self.log_tail()}"
                )
            # Waiting on the process is the pause between polls, and notices a crash
            # (port taken, import error) at once instead of at the deadline.
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self._process.wait(timeout=0.05)
                raise RuntimeError(
                    f"moto exited with code {code} before answering on "
                    f"{self.endpoint_url}:\n{self.log_tail()}"
                )

    def stop(self) -> None:
        """Kill the server; connections are refused until ``start()``."""
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the server and delete its recording and log."""
        self.stop()
        self._workdir.cleanup()

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's output, for failure messages."""
        try:
            text = self._log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])

    # -- S3 helpers --------------------------------------------------------

    @contextlib.contextmanager
    def client(self, keys: tuple[str, str] = (ACCESS_KEY_ID, SECRET_ACCESS_KEY)) -> Iterator[Any]:
        """A synchronous boto3 S3 client for arranging and inspecting test state."""
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=keys[0],
            aws_secret_access_key=keys[1],
        )
        try:
            yield client
        finally:
            client.close()

    def iam_keys(self, user: str) -> tuple[str, str]:
        """The key pair of a new IAM user allowed every S3 action: what S3 accepts
        once ``enforce_auth`` is on (make it before)."""
        iam = boto3.client(
            "iam",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY_ID,
            aws_secret_access_key=SECRET_ACCESS_KEY,
        )
        try:
            iam.create_user(UserName=user)
            policy = {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }
            iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps(policy))
            made = iam.create_access_key(UserName=user)["AccessKey"]
        finally:
            iam.close()
        return made["AccessKeyId"], made["SecretAccessKey"]

    def objects(
        self, bucket: str, keys: tuple[str, str] = (ACCESS_KEY_ID, SECRET_ACCESS_KEY)
    ) -> dict[str, bytes]:
        """Every object in ``bucket``, by key, read back directly from moto, as a reader
        gets it back (``stored.as_read``)."""
        with self.client(keys) as s3:
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
            found = {}
            for key in keys:
                answer = s3.get_object(Bucket=bucket, Key=key)
                found[key] = (answer["Body"].read(), answer.get("Metadata", {}))
            return as_read(found)

    def store(self, bucket: str) -> S3Store:
        """bookstore's ``S3Store`` on ``bucket`` (which may not exist), with moto's credentials."""
        return S3Store(
            bucket,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            access_key_id=ACCESS_KEY_ID,
            secret_access_key=SECRET_ACCESS_KEY,
        )

    def make_bucket(self, name: str) -> None:
        """Create a bucket (moto accepts the dummy credentials unless auth is enforced)."""
        with self.client() as client:
            client.create_bucket(Bucket=name)

    @contextlib.contextmanager
    def enforce_auth(self) -> Iterator[None]:
        """Within the block, moto checks credentials against its IAM and refuses unknown ones.

        The setting is server-wide: use it only where nothing else talks to this server.
        """
        url = f"{self.endpoint_url}/moto-api/reset-auth"
        response = requests.post(url, data=b"0", timeout=10)
        response.raise_for_status()
        previous = response.json()["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]
        try:
            yield
        finally:
            requests.post(url, data=str(previous).encode(), timeout=10).raise_for_status()
