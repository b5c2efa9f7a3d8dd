"""A ``Store`` on an S3 bucket (AWS or any S3-compatible service), via aiobotocore.

Versions are written with ``If-None-Match: *``, so S3 itself refuses to
overwrite a key; a refused write is then settled by comparing bytes. Every
botocore and aiohttp failure is translated in ``_translate`` and nowhere else,
so callers only ever see ``bookstore.core.errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    InvalidRegionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url, validate_region_name

from bookstore.core import keys
from bookstore.core.body import CHUNK, Body, chunks_of, open_body, read_whole, size_of
from bookstore.core.errors import (
    ConfigurationError,
    ObjectConflict,
    ObjectNotFound,
    StoreUnavailable,
)
from bookstore.store.base import ObjectInfo, StoredObject

__all__ = ["S3Store"]

_CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden"}
)
_PUT_ATTEMPTS = 3
_JSON = "application/json"
PART_BYTES = 8 << 20
"""Bodies larger than this are uploaded in parts of this size (S3's minimum is 5 MiB)."""
_MIN_SCRUB = 8


def _check_settings(bucket: str, endpoint_url: str | None, region_name: str | None) -> None:
    """Refuse at start-up what botocore would only refuse on first use, naming the setting."""
    if not bucket:
        raise ConfigurationError("s3_bucket must name a bucket")
    if endpoint_url is not None and (
        urlsplit(endpoint_url).scheme not in ("http", "https")
        or not (is_valid_endpoint_url(endpoint_url) or is_valid_ipv6_endpoint_url(endpoint_url))
    ):
        raise ConfigurationError(
            f"s3_endpoint_url must be an http:// or https:// URL with a host, not {endpoint_url!r}"
        )
    try:
        validate_region_name(region_name)
    except InvalidRegionError:
        raise ConfigurationError(
            f"s3_region_name must be an AWS region name such as 'us-east-1', not {region_name!r}"
        ) from None


def _content_type(key: str, metadata: Mapping[str, str]) -> str:
    """What the object's bytes are: a notebook as saved, a zstd frame, or other bytes."""
    if keys.parse_version_metadata(metadata).format is not None or key.endswith(".zst"):
        return "application/zstd"
    return "application/json" if key.endswith(".ipynb") else "application/octet-stream"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _error_message(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Message", "")).strip()


def _http_status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


class S3Store:
    """Immutable versions as objects in one S3 bucket, over one long-lived client."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        max_pool_connections: int = 16,
    ) -> None:
        _check_settings(bucket, endpoint_url, region_name)
        if (access_key_id is None) != (secret_access_key is None):
            raise ConfigurationError(
                "set both s3_access_key_id and s3_secret_access_key, or neither "
                "to use the AWS credential chain"
            )
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.description = f"s3://{bucket}" + (f" at {endpoint_url}" if endpoint_url else "")
        self._where = endpoint_url or (f"AWS S3 in {region_name}" if region_name else "AWS S3")
        self._client_args: dict[str, Any] = {
            "endpoint_url": endpoint_url,
            "region_name": region_name,
            "config": Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                max_pool_connections=max_pool_connections,
            ),
        }
        if access_key_id is not None:
            # Only here and in the client; _scrub keeps them out of every message.
            self._client_args["aws_access_key_id"] = access_key_id
            self._client_args["aws_secret_access_key"] = secret_access_key
        # Masked in messages as a last line of defence (botocore never puts them
        # there); too short a value would mask ordinary words instead.
        self._secrets = tuple(
            s for s in (access_key_id, secret_access_key) if s and len(s) >= _MIN_SCRUB
        )
        self._client: Any = None
        self._exit_stack: contextlib.AsyncExitStack | None = None
        self._client_lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"S3Store({self.description!r})"

    # -- the one error boundary --------------------------------------------

    def _scrub(self, text: str) -> str:
        """``text`` with the configured credentials masked, whatever produced it."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @contextlib.contextmanager
    def _translate(self, key: str | None = None) -> Iterator[None]:
        """Turn botocore and aiohttp failures into ``bookstore.core.errors``.

        ``key`` is the object the operation is about; without one, a 404 means
        the bucket is missing.
        """
        try:
            yield
        except ClientError as exc:
            raise self._client_error(exc, key) from exc
        except (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError) as exc:
            raise StoreUnavailable(
                f"no usable AWS credentials were found for {self.description} (set "
                "s3_access_key_id and s3_secret_access_key, or configure the AWS "
                "credential chain)"
            ) from exc
        except (
            EndpointConnectionError,
            ConnectTimeoutError,
            ReadTimeoutError,
            ConnectionClosedError,
            BotoConnectionError,
            HTTPClientError,
            InvalidRegionError,
            aiohttp.ClientError,
            asyncio.TimeoutError,
        ) as exc:
            raise StoreUnavailable(
                f"cannot reach S3 at {self._where}; is the endpoint up and reachable? "
                f"({self._scrub(type(exc).__name__)}: {self._scrub(str(exc))})"
            ) from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"S3 at {self._where} failed: {self._scrub(str(exc))}") from exc

    def _client_error(self, exc: ClientError, key: str | None) -> Exception:
        code = _error_code(exc)
        status = _http_status(exc)
        if code == "NoSuchBucket" or (status == 404 and key is None):
            return StoreUnavailable(
                f"the S3 bucket {self.bucket!r} does not exist at {self._where}"
            )
        if key is not None and (code == "NoSuchKey" or status == 404):
            return ObjectNotFound(key)
        if code in _CREDENTIAL_CODES or status == 403:
            return StoreUnavailable(
                f"S3 refused the credentials for bucket {self.bucket!r} at {self._where} "
                f"({code or status}; check s3_access_key_id / s3_secret_access_key "
                "or the AWS credential chain)"
            )
        message = self._scrub(_error_message(exc)) or "no message"
        return StoreUnavailable(
            f"S3 at {self._where} answered {code or status} for bucket {self.bucket!r}: {message}"
        )

    async def _get_client(self) -> Any:
        """The store's client, created on first use so construction needs no event loop."""
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    stack = contextlib.AsyncExitStack()
                    with self._translate():
                        creator = get_session().create_client("s3", **self._client_args)
                        client = await stack.enter_async_context(creator)
                    self._exit_stack = stack
                    self._client = client
        return self._client

    # -- Store -------------------------------------------------------------

    async def put(
        self, key: str, data: Body, metadata: Mapping[str, str], *, overwrite: bool = False
    ) -> None:
        """Write ``data`` unless ``key`` exists (or replace it, with ``overwrite``).

        Bodies over ``PART_BYTES`` go up as a multipart upload, one part in memory at
        a time, completed only if the key is still free.
        """
        client = await self._get_client()
        if overwrite:
            with self._translate():
                await self._write(client, key, data, metadata, {})
            return
        for _ in range(_PUT_ATTEMPTS):
            with self._translate():
                try:
                    await self._write(client, key, data, metadata, {"IfNoneMatch": "*"})
                except ClientError as exc:
                    if _error_code(exc) not in _CONFLICT_CODES and _http_status(exc) != 412:
                        raise
                else:
                    return
            same = await self._holds(key, data)
            if same is None:
                # Deleted since, or a concurrent conditional write not yet visible.
                continue
            if not same:
                raise ObjectConflict(key)
            return
        raise StoreUnavailable(
            f"S3 at {self._where} kept refusing to write {key!r} to bucket {self.bucket!r} "
            "although no object could be read there"
        )

    async def _write(
        self,
        client: Any,
        key: str,
        data: Body,
        metadata: Mapping[str, str],
        condition: dict[str, str],
    ) -> None:
        described = {
            "Bucket": self.bucket,
            "Key": key,
            "ContentType": _content_type(key, metadata),
            "Metadata": dict(metadata),
        }
        if size_of(data) <= PART_BYTES:
            body = await asyncio.to_thread(read_whole, data)
            await client.put_object(Body=body, **described, **condition)
            return
        created = await client.create_multipart_upload(**described)
        upload = {"Bucket": self.bucket, "Key": key, "UploadId": created["UploadId"]}
        pieces = chunks_of(data, PART_BYTES)
        try:
            parts: list[dict[str, Any]] = []
            while piece := await asyncio.to_thread(next, pieces, b""):
                number = len(parts) + 1
                sent = await client.upload_part(**upload, PartNumber=number, Body=piece)
                parts.append({"ETag": sent["ETag"], "PartNumber": number})
            await client.complete_multipart_upload(
                **upload, MultipartUpload={"Parts": parts}, **condition
            )
        except BaseException:
            # Parts of an upload never completed are billed until aborted.
            with contextlib.suppress(Exception):
                await asyncio.shield(client.abort_multipart_upload(**upload))
            raise
        finally:
            pieces.close()

    async def _holds(self, key: str, data: Body) -> bool | None:
        """Whether ``key`` holds exactly ``data``, both read in chunks; ``None`` if absent."""
        client = await self._get_client()
        try:
            with self._translate(key):
                response = await client.get_object(Bucket=self.bucket, Key=key)
                with open_body(data) as expected:
                    async with response["Body"] as stream:
                        while piece := await stream.read(CHUNK):
                            if await asyncio.to_thread(expected.read, len(piece)) != piece:
                                return False
                    return not expected.read(1)
        except ObjectNotFound:
            return None

    async def get(self, key: str, *, version_id: str | None = None) -> StoredObject:
        """Read an object's bytes and metadata (an older S3 object version by id)."""
        client = await self._get_client()
        extra = {"VersionId": version_id} if version_id else {}
        with self._translate(key):
            response = await client.get_object(Bucket=self.bucket, Key=key, **extra)
            async with response["Body"] as body:
                data = await body.read()
        return StoredObject(key, bytes(data), dict(response.get("Metadata", {})))

    async def head(self, key: str) -> StoredObject:
        """Read an object's metadata; ``data`` is ``b""``."""
        client = await self._get_client()
        with self._translate(key):
            response = await client.head_object(Bucket=self.bucket, Key=key)
        return StoredObject(key, b"", dict(response.get("Metadata", {})))

    async def list(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object whose key starts with ``prefix``, in key order (S3 lists in order)."""
        client = await self._get_client()
        with self._translate():
            paginator = client.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    yield ObjectInfo(str(item["Key"]), int(item["Size"]), item["LastModified"])

    async def delete(self, key: str) -> None:
        """Remove an object; S3 answers a missing key with success."""
        client = await self._get_client()
        with self._translate():
            await client.delete_object(Bucket=self.bucket, Key=key)

    async def check(self) -> None:
        """Prove the bucket exists and the credentials are accepted (HeadBucket)."""
        client = await self._get_client()
        with self._translate():
            await client.head_bucket(Bucket=self.bucket)

    async def close(self) -> None:
        """Close the client and its connection pool; a later call opens a new one."""
        async with self._client_lock:
            stack, self._exit_stack, self._client = self._exit_stack, None, None
            if stack is not None:
                await stack.aclose()
