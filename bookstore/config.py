"""BookstoreSettings: every setting, where its default comes from, and its checks.

Each setting is read, in order of precedence, from Jupyter configuration
(``c.BookstoreSettings.<name>``), the environment variable ``BOOKSTORE_<NAME>``,
the original bookstore's ``JPYNB_S3_*`` variable where it had one, and the default.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

from jupyter_core.paths import jupyter_data_dir
from traitlets import Bool, Dict, Enum, Float, Integer, List, TraitError, Unicode, default
from traitlets.config import Config, LoggingConfigurable

from bookstore.core import keys
from bookstore.core.errors import ConfigurationError, InvalidPath
from bookstore.core.retention import RetentionPolicy
from bookstore.core.view import AS_STORED, PathView

RETENTION_RULES = (
    "keep_last",
    "keep_hourly",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "keep_yearly",
    "keep_within",
)
"""The rules ``retention`` takes: ``bookstore-history prune``'s ``--keep-*`` options."""

__all__ = [
    "ARCHIVABLE_TYPES",
    "EARLIER_DEFAULT_WORKSPACE",
    "FILES_WORKSPACE",
    "BookstoreSettings",
    "workspace_owner",
]

ARCHIVABLE_TYPES = ("notebook", "file")
FILES_WORKSPACE = "files"
"""The workspace of histories kept by absolute path, when no workspace_prefix is set."""
EARLIER_DEFAULT_WORKSPACE = "workspace"
"""Where earlier releases kept every history when no workspace_prefix was set."""
PUSHED_WORKSPACE = "pushed"
"""The label of a service-mode server's saves in its outbox (the service names the workspace)."""

_LEGACY_VARIABLES = {
    "s3_bucket": "JPYNB_S3_BUCKET",
    "s3_endpoint_url": "JPYNB_S3_ENDPOINT_URL",
    "s3_region_name": "JPYNB_S3_REGION_NAME",
    "s3_access_key_id": "JPYNB_S3_ACCESS_KEY_ID",
    "s3_secret_access_key": "JPYNB_S3_SECRET_ACCESS_KEY",
}


def workspace_owner() -> str:
    """Whose history this process keeps: the JupyterHub user the server was spawned
    for (JupyterHub's identity provider admits that user), else the OS account."""
    hub_user = os.environ.get("JUPYTERHUB_USER")
    if hub_user:
        return hub_user
    try:
        return getpass.getuser()
    except (KeyError, OSError) as exc:
        raise ConfigurationError(
            "BookstoreSettings.workspace_prefix uses {username}, but this process runs "
            "under no named account; set JUPYTERHUB_USER"
        ) from exc


def _nested(first: str, second: str) -> bool:
    """Whether one key prefix is the other, or lies within it ('' holds every key)."""
    return first == second or any(
        not outer or inner.startswith(f"{outer}/")
        for outer, inner in ((first, second), (second, first))
    )


def _data_dir() -> Path:
    return Path(jupyter_data_dir()) / "bookstore"


class BookstoreSettings(LoggingConfigurable):
    """Where versions are stored and indexed, and how the archiver behaves."""

    storage = Enum(
        ["local", "s3"],
        default_value="local",
        help="Where versions are stored: 'local' (a directory, no account needed) or 's3'.",
    ).tag(config=True)

    local_store_dir = Unicode(
        help="Directory of the local store (storage = 'local').",
    ).tag(config=True)

    @default("local_store_dir")
    def _default_local_store_dir(self) -> str:
        return str(_data_dir() / "store")

    outbox_dir = Unicode(
        help="Directory where each save waits, durably, until it is archived.",
    ).tag(config=True)

    @default("outbox_dir")
    def _default_outbox_dir(self) -> str:
        return str(_data_dir() / "outbox")

    outbox_max_bytes = Integer(
        1 << 30,
        help="Most bytes the outbox may hold (saves waiting, and those set aside); past it "
        "new saves still succeed but are not kept for history. The status warns from 75%.",
    ).tag(config=True)
    outbox_min_free_bytes = Integer(
        100 << 20,
        help="Bytes the outbox leaves free on its disk: a save that would leave less is not "
        "kept for history, so the notebooks themselves can still be saved.",
    ).tag(config=True)

    index_url = Unicode(
        help="SQLAlchemy URL of the version index (async driver, e.g. sqlite+aiosqlite:///…).",
    ).tag(config=True)
    service_url = Unicode(
        None,
        allow_none=True,
        help="On JupyterHub: the archive service's URL (e.g. http://proxy-public/services/"
        "bookstore/). Set, the server pushes its saves there with its JUPYTERHUB_API_TOKEN "
        "and holds no store or index settings of its own.",
    ).tag(config=True)

    @default("index_url")
    def _default_index_url(self) -> str:
        return f"sqlite+aiosqlite:///{_data_dir() / 'index.sqlite'}"

    s3_bucket = Unicode("", help="S3 bucket holding the versions (storage = 's3').").tag(
        config=True
    )
    s3_endpoint_url = Unicode(
        None,
        allow_none=True,
        help="S3 endpoint URL, for MinIO, Ceph, R2 or a test server; AWS when unset.",
    ).tag(config=True)
    s3_region_name = Unicode(None, allow_none=True, help="S3 region name.").tag(config=True)
    s3_access_key_id = Unicode(
        None,
        allow_none=True,
        help="S3 access key id; the standard AWS credential chain when unset.",
    ).tag(config=True)
    s3_secret_access_key = Unicode(
        None,
        allow_none=True,
        help="S3 secret access key; the standard AWS credential chain when unset.",
    ).tag(config=True)

    workspace_prefix = Unicode(
        None,
        allow_none=True,
        help="Key prefix under which every version is stored, paths relative to the server's "
        "root; '{username}' in it gives each user a workspace of their own (JUPYTERHUB_USER, "
        "else the OS account). Unset: each file's history is kept under its absolute path, "
        f"in the workspace '{FILES_WORKSPACE}', so two project folders never share one.",
    ).tag(config=True)
    published_prefix = Unicode(
        "published",
        help="Key prefix under which published notebooks are stored; '{username}' as in "
        "workspace_prefix. It must not contain, or lie within, the workspace.",
    ).tag(config=True)

    enable_publish = Bool(
        True, help="Allow PUT /api/bookstore/publish/<path> (copies to published_prefix)."
    ).tag(config=True)
    clone_s3_buckets = List(
        Unicode(),
        default_value=[],
        help="Buckets notebooks may be cloned from (comma-separated in the variable); "
        "empty turns S3 cloning off.",
    ).tag(config=True)
    fs_clone_dir = Unicode(
        "",
        help="Directory notebooks may be cloned from on the server's disk; empty turns it off.",
    ).tag(config=True)

    archive_concurrency = Integer(8, help="How many different paths are uploaded at once.").tag(
        config=True
    )
    archive_types = List(
        Unicode(),
        default_value=["notebook"],
        help="Content types archived: 'notebook', 'file' (comma-separated in the variable).",
    ).tag(config=True)
    retry_initial_delay = Float(
        0.5, help="Seconds before the first retry of a failed archive; doubles up to the maximum."
    ).tag(config=True)
    retry_max_delay = Float(
        30.0, help="Longest wait, in seconds, between retries of a failed archive."
    ).tag(config=True)
    shutdown_timeout = Float(
        10.0, help="Seconds the server waits at shutdown for queued saves to be archived."
    ).tag(config=True)

    retention = Dict(
        help="Thin each history on a schedule with prune's rules, e.g. {'keep_within': '1d', "
        "'keep_hourly': 168, 'keep_daily': -1}: every version for a day, then hourly for a "
        "week, then daily. Labelled and pinned versions are always kept. Empty: off.",
    ).tag(config=True)
    retention_interval = Float(
        3600.0, help="Seconds between two scheduled thinnings (when retention is set)."
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        configured = self._configured_names(kwargs)
        for name, trait in self.traits(config=True).items():
            if name in configured:
                continue
            for variable in self.variables(name):
                if variable in os.environ:
                    self._set_from_variable(name, trait, variable, os.environ[variable])
                    break

    @staticmethod
    def variables(name: str) -> list[str]:
        """The environment variables a setting is read from, most important first."""
        names = [f"BOOKSTORE_{name.upper()}"]
        if name in _LEGACY_VARIABLES:
            names.append(_LEGACY_VARIABLES[name])
        return names

    def _configured_names(self, kwargs: dict[str, Any]) -> set[str]:
        section = self.config.get(type(self).__name__, Config())
        return set(section) | set(kwargs)

    def _set_from_variable(self, name: str, trait: Any, variable: str, raw: str) -> None:
        try:
            if isinstance(trait, List):
                value: Any = [item.strip() for item in raw.split(",") if item.strip()]
            else:
                value = trait.from_string(raw)
            setattr(self, name, value)
        except (TraitError, ValueError) as exc:
            raise ConfigurationError(
                f"the environment variable {variable}={raw!r} is not a valid {name}: {exc}"
            ) from exc

    def validate(self) -> None:
        """Refuse settings that cannot work, with a sentence that names the setting.

        The S3 client's own settings (endpoint, region, key pair) are checked by
        ``S3Store`` when it is built, which happens at start-up too.
        """
        if self.service_url is not None:
            if urlsplit(self.service_url).scheme not in ("http", "https"):
                self._refuse("service_url", "must be an http:// or https:// URL")
        else:
            self._validate_store_and_index()
        if self.archive_concurrency < 1:
            self._refuse("archive_concurrency", "must be at least 1")
        unknown = sorted(set(self.archive_types) - set(ARCHIVABLE_TYPES))
        if unknown:
            self._refuse("archive_types", f"may only hold {ARCHIVABLE_TYPES}, not {unknown}")
        if self.retry_initial_delay <= 0:
            self._refuse("retry_initial_delay", "must be positive")
        if self.retry_max_delay < self.retry_initial_delay:
            self._refuse("retry_max_delay", "must be at least retry_initial_delay")
        if self.shutdown_timeout < 0:
            self._refuse("shutdown_timeout", "must not be negative")
        if self.outbox_max_bytes < 1:
            self._refuse("outbox_max_bytes", "must be at least 1")
        if self.outbox_min_free_bytes < 0:
            self._refuse("outbox_min_free_bytes", "must not be negative")
        if self.fs_clone_dir and not Path(self.fs_clone_dir).expanduser().is_dir():
            self._refuse(
                "fs_clone_dir", f"must be an existing directory, not {self.fs_clone_dir!r}"
            )
        for name in ("workspace_prefix", "published_prefix"):
            prefix = getattr(self, name) or ""
            parts = prefix.strip("/").split("/")
            if "\0" in prefix or any(part in (".", "..") for part in parts):
                self._refuse(name, "must be a plain key prefix without '.', '..' or NUL")
            if set("{}") & set(prefix.replace(keys.USERNAME_FIELD, "")):
                self._refuse(name, "may hold no placeholder but {username}")
        if self.retention_interval <= 0:
            self._refuse("retention_interval", "must be positive")
        try:
            self.retention_policy()
        except (TypeError, ValueError) as exc:
            self._refuse("retention", f"is not a policy prune accepts ({exc})")
        if self.enable_publish and _nested(self.workspace, self.published):
            # A published path could otherwise name, and replace, a version's key.
            self._refuse("published_prefix", "must not contain, or lie within, workspace_prefix")

    def _validate_store_and_index(self) -> None:
        """What only a process that archives itself needs: SQLAlchemy is imported here."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        if self.storage == "s3" and not self.s3_bucket:
            self._refuse("s3_bucket", "must name a bucket when storage is 's3'")
        try:
            url = make_url(self.index_url)
        except ArgumentError:
            shown = _hide_password(self.index_url)
            self._refuse("index_url", f"is not a SQLAlchemy URL: {shown!r}")
        drivers = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
        backend = url.get_backend_name()
        if drivers.get(backend) != url.get_driver_name():
            self._refuse(
                "index_url",
                "must name a SQLite or PostgreSQL database with its async driver: "
                "sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB",
            )

    def retention_policy(self) -> RetentionPolicy | None:
        """The scheduled thinning's policy; ``None`` when it is off."""
        if not self.retention:
            return None
        unknown = sorted(set(self.retention) - set(RETENTION_RULES))
        if unknown:
            raise ValueError(f"unknown rules {unknown}; the rules are {list(RETENTION_RULES)}")
        policy = RetentionPolicy.from_options(**self.retention)
        if policy.is_empty:
            raise ValueError("no rule keeps anything: it would remove every unlabelled version")
        return policy

    @property
    def by_file(self) -> bool:
        """Whether histories are kept by each file's absolute path (no workspace_prefix)."""
        return self.workspace_prefix is None and self.service_url is None

    @property
    def workspace(self) -> str:
        """The key prefix of this user's versions, which also scopes them in the index;
        in service mode, the service builds it, and this only labels the outbox's saves."""
        if self.service_url is not None:
            return PUSHED_WORKSPACE
        return FILES_WORKSPACE if self.by_file else self._resolve("workspace_prefix")

    def path_view(self, root: str | Path) -> PathView:
        """How a server or a command rooted at ``root`` names the histories' paths."""
        return PathView.of_root(root) if self.by_file else AS_STORED

    @property
    def published(self) -> str:
        """The key prefix this user's published notebooks are copied to."""
        return self._resolve("published_prefix")

    def _resolve(self, name: str) -> str:
        template: str = getattr(self, name) or ""
        if keys.USERNAME_FIELD not in template:
            return template.strip("/")
        username = workspace_owner()
        try:
            return keys.resolve_prefix(template, username)
        except InvalidPath:
            self._refuse(name, f"cannot hold the user name {username!r}")

    def _refuse(self, name: str, problem: str) -> NoReturn:
        variable = self.variables(name)[0]
        raise ConfigurationError(f"BookstoreSettings.{name} ({variable}) {problem}.")


def _hide_password(url: str) -> str:
    """``url`` with what follows ``user:`` up to the last ``@`` shown as ``***``: a URL
    SQLAlchemy cannot parse still goes into logs and errors without its password."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        scheme, rest = "", url
    userinfo, at, host = rest.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{separator}{user}:***@{host}"
