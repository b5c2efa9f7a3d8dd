"""Many users on one hub: N single-user servers archiving to one bucket and one index.

What is measured: a JupyterHub-like deployment on this machine. One moto S3
server and one PostgreSQL server (fsync and synchronous_commit on, so a
committed index row is on disk) are shared by N real ``jupyter server``
processes, one per user, each with its own root directory, ``JUPYTERHUB_USER``
(``user-00``, ``user-01``, ...) and ``BOOKSTORE_WORKSPACE_PREFIX=bookstore/{username}``.
The servers are started a few at a time (2 by default, one per core here), as
a hub spawns them on login; like the tests' servers, they run without the
jupyterlab, notebook, lsp and terminals extensions, as a hub image without
them would.

Each user saves its own notebooks (20-50 KB, every save distinct) from a
thread of its own with its own ``requests.Session``, pausing a think time
between saves (uniform in 0.5-1.5x the mean, the first save within one mean
think time of the start). The default mean is 8 s: real autosave comes every
120 s, so this is ~15x a hub of N people typing; the aggregate rate of 50
users then equals ~750 autosaving users, which stresses the shared bucket and
index while the run stays within ~5 minutes. Saves follow a fixed schedule
(open loop), so a slow server does not lower the offered rate.

Figures: start-up time, save acknowledgement latency p50/p95 (client side),
offered and achieved saves/s, RSS of the servers, and archive latency
p50/p95/max from the ``archive_latency`` view, queried by SQL on the
PostgreSQL index as an operator would. The same schedule against N servers
without bookstore (``--no-baseline`` skips it) gives the ratios. After the
load the script waits for every backlog to drain, then audits the index and
the bucket: every acknowledged save is a row of its user's workspace with its
exact bytes in the bucket under ``bookstore/<user>/``, versions run 1..n per
path, and no object sits in another user's workspace. Exit status 1 if a
backlog does not drain, a save is lost or the audit finds any other problem;
no timing is asserted.

Quick run::

    python -m benchmarks.multi_user_load --users 4 --saves 4 --think 1
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import nbformat
import requests
from sqlalchemy import Row, text

from benchmarks._common import bytes_per_cell, code_fingerprint, machine_line, make_notebook
from bookstore.index import IndexDatabase
from tests.support.hub import SERVICE, ArchiveService, Hub, ServiceApi
from tests.support.jupyter_process import JupyterServer, wait_for
from tests.support.moto_server import MotoServer, free_port, s3_env
from tests.support.nginx import LoadBalancer
from tests.support.postgres_server import PostgresServer

BUCKET = "hub-archive"
PREFIX = "bookstore"
# What an operator reads: percentiles of the archive_latency view, in PostgreSQL's SQL.
LATENCY_SQL = """
SELECT count(*) AS versions,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms,
       max(latency_ms) AS max_ms
FROM archive_latency
WHERE workspace LIKE :workspaces
"""
ROWS_SQL = (
    "SELECT workspace, path, version, store_key, sha256 FROM versions "
    "WHERE workspace LIKE :workspaces"
)
COUNT_SQL = "SELECT count(*) FROM versions WHERE workspace LIKE :workspaces"
CONNECTIONS_SQL = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
WARNING_LINE = re.compile(r"^\[[WEC] \S+ \S+ \S+\] (bookstore: .*)$")


class Save(NamedTuple):
    """One planned save: whose, of what, when (seconds after the load starts), and its bytes."""

    user: str
    path: str
    version: int
    at: float
    body: bytes
    sha256: str


class Ack(NamedTuple):
    """One acknowledged save: when it was sent (seconds after the start) and how long it took."""

    save: Save
    sent: float
    seconds: float


class Phase(NamedTuple):
    """What one set of N servers measured: start-up, the saves, and their memory after."""

    started_seconds: float
    start_each: list[float]
    ready_seconds: float | None
    acks: list[Ack]
    rss_total_kb: int
    rss_peak_kb: int


class Audit(NamedTuple):
    """The index and the bucket against the acknowledged saves; every count but
    ``rows`` should be 0."""

    rows: int
    users_off: int
    paths_off: int
    rows_astray: int
    objects_astray: int
    lost: int

    def problems(self) -> int:
        """Everything the audit found wrong."""
        return self.users_off + self.paths_off + self.rows_astray + self.objects_astray + self.lost


class Archive(NamedTuple):
    """What only the bookstore servers are measured on."""

    drained: bool
    drain_seconds: float
    connections: int
    warnings: Counter[str]
    latency: Row[Any]
    audit: Audit


def user_name(number: int) -> str:
    """Names of one width, so the users' workspaces sort in order."""
    return f"user-{number:02d}"


def plan_user(user: str, args: argparse.Namespace) -> list[Save]:
    """A user's saves, round-robin over their notebooks, each with content of its own."""
    rng = random.Random(user)  # the same schedule for the baseline and for bookstore
    per_cell = bytes_per_cell()
    at = rng.uniform(0, args.think)
    saves = []
    for number in range(args.saves):
        notebook = number % args.notebooks
        path = f"analysis-{notebook}.ipynb"
        kb = args.min_kb + (args.max_kb - args.min_kb) * notebook / max(1, args.notebooks - 1)
        nb = make_notebook(max(1, round(kb * 1024 / per_cell)), f"# {user} {path} save {number}")
        body = json.dumps({"type": "notebook", "format": "json", "content": nb}).encode()
        # The file the contents manager writes: nbformat.write adds the final newline.
        written = (nbformat.writes(nb, version=nbformat.NO_CONVERT) + "\n").encode()
        version = number // args.notebooks + 1
        saves.append(Save(user, path, version, at, body, hashlib.sha256(written).hexdigest()))
        at += rng.uniform(0.5, 1.5) * args.think
    return saves


class IndexReader:
    """The shared index, read by SQL over a read-only connection, as an operator reads it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._loop = asyncio.new_event_loop()
        self._database = IndexDatabase(url, read_only=True)

    def query(self, sql: str, **params: object) -> list[Row[Any]]:
        return self._loop.run_until_complete(self._query(sql, params))

    async def _query(self, sql: str, params: dict[str, object]) -> list[Row[Any]]:
        async with self._database.reading() as session:
            return list((await session.execute(text(sql), params)).all())

    def close(self) -> None:
        self._loop.run_until_complete(self._database.close())
        self._loop.close()


def bookstore_env(moto: MotoServer, index_url: str) -> dict[str, str]:
    """What every user's server shares: one bucket, one index, one workspace template."""
    return {
        **s3_env(BUCKET, moto.endpoint_url),
        "BOOKSTORE_INDEX_URL": index_url,
        "BOOKSTORE_WORKSPACE_PREFIX": f"{PREFIX}/{{username}}",
    }


@contextmanager
def loaded_servers(
    base: Path,
    plan: list[list[Save]],
    env: Callable[[str], dict[str, str]] | None,
    args: argparse.Namespace,
) -> Iterator[tuple[list[JupyterServer], Phase]]:
    """One server per user (bookstore off when ``env`` is None; else ``env(user)`` is
    its environment), started a few at a time as a hub spawns them, then the load;
    every server is stopped on the way out."""
    servers = [
        JupyterServer(
            base / saves[0].user,
            env={**(env(saves[0].user) if env else {}), "JUPYTERHUB_USER": saves[0].user},
            bookstore=env is not None,
        )
        for saves in plan
    ]
    try:
        started = time.perf_counter()
        each = start_all(servers, args.start_parallel)
        started_seconds = time.perf_counter() - started
        ready_seconds = None
        if env is not None:
            wait_for(lambda: all(map(archiving, servers)), 120, 0.2, "every server to archive")
            ready_seconds = time.perf_counter() - started
        acks = run_load(servers, plan)
        total, peak = rss_kb(servers)
        yield servers, Phase(started_seconds, each, ready_seconds, acks, total, peak)
    finally:
        stop_all(servers)


def start_all(servers: list[JupyterServer], parallel: int) -> list[float]:
    """Seconds each server took to answer, ``parallel`` of them starting at once."""

    def timed_start(server: JupyterServer) -> float:
        started = time.perf_counter()
        server.start()
        return time.perf_counter() - started

    with ThreadPoolExecutor(parallel) as pool:
        return list(pool.map(timed_start, servers))


def stop_all(servers: list[JupyterServer]) -> None:
    """SIGTERM every server at once (each runs its shutdown hooks) and wait for them."""
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda server: server.stop(), servers))


def archiving(server: JupyterServer) -> bool:
    """Whether the server's index is migrated and checked, so it archives."""
    return bool(server.status()["archive"]["ready"])


def idle(server: JupyterServer) -> bool:
    """Whether every save the server acknowledged is archived."""
    archive = server.status()["archive"]
    return bool(archive["ready"] and archive["backlog"] == 0)


def user_session(server: JupyterServer) -> requests.Session:
    """A session of the user's own (``requests.Session`` is not thread-safe)."""
    session = requests.Session()
    session.headers["Authorization"] = f"token {server.token}"
    return session


def save_as_user(
    server: JupyterServer, saves: list[Save], start: float, abort: threading.Event
) -> list[Ack]:
    """Make a user's saves on schedule; stop early if another user's save failed."""
    acks = []
    with user_session(server) as session:
        for save in saves:
            if abort.wait(max(0.0, start + save.at - time.perf_counter())):
                break
            sent = time.perf_counter()
            response = session.put(
                f"{server.url}/api/contents/{save.path}",
                data=save.body,
                headers={"Content-Type": "application/json"},
                timeout=120,
            )
            seconds = time.perf_counter() - sent
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{save.user}: save of {save.path} failed: {response.text}")
            acks.append(Ack(save, sent - start, seconds))
    return acks


def run_load(servers: list[JupyterServer], plan: list[list[Save]]) -> list[Ack]:
    """Every user saves from a thread of its own; the first failure stops them all."""
    abort = threading.Event()
    acks: list[Ack] = []
    with ThreadPoolExecutor(len(servers)) as pool:
        start = time.perf_counter()
        futures = [
            pool.submit(save_as_user, server, saves, start, abort)
            for server, saves in zip(servers, plan, strict=True)
        ]
        try:
            for future in as_completed(futures):
                acks.extend(future.result())
        finally:
            abort.set()
    return acks


def rss_kb(servers: list[JupyterServer]) -> tuple[int, int]:
    """The servers' resident memory in total now, and the largest peak of one (from /proc)."""
    total = peak = 0
    for server in servers:
        assert server.process is not None, "the server is running"
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        total += int(fields["VmRSS"].split()[0])
        peak = max(peak, int(fields["VmHWM"].split()[0]))
    return total, peak


def wait_drained(
    servers: list[JupyterServer], reader: IndexReader, saves: int, timeout: float
) -> bool:
    """Wait until every backlog is empty and the index holds every save; False at the deadline."""

    def drained() -> bool:
        rows = reader.query(COUNT_SQL, workspaces=f"{PREFIX}/%")
        return bool(rows[0][0] >= saves) and all(map(idle, servers))

    try:
        wait_for(drained, timeout, 0.25, "every backlog to drain")
    except AssertionError:
        return False
    return True


def log_warnings(servers: list[JupyterServer]) -> Counter[str]:
    """bookstore's warnings and errors in the servers' logs (retries, failed steps), by text."""
    return Counter(
        match.group(1)
        for server in servers
        for line in server.log().splitlines()
        if (match := WARNING_LINE.match(line))
    )


def audit(acks: list[Ack], rows: list[Row[Any]], objects: dict[str, bytes]) -> Audit:
    """Check the index and the bucket against every acknowledged save, user by user."""
    digests = {key: hashlib.sha256(body).hexdigest() for key, body in objects.items()}
    made = Counter(f"{PREFIX}/{ack.save.user}" for ack in acks)
    indexed = Counter(row.workspace for row in rows)
    versions: dict[tuple[str, str], list[int]] = {}
    for row in rows:
        versions.setdefault((row.workspace, row.path), []).append(row.version)
    sound = {
        (row.workspace, row.path, row.version, row.sha256)
        for row in rows
        if row.store_key.startswith(f"{row.workspace}/")
        and digests.get(row.store_key) == row.sha256
    }
    owner = {row.store_key: row.workspace for row in rows}
    return Audit(
        rows=len(rows),
        users_off=sum(made[user] != indexed[user] for user in made.keys() | indexed.keys()),
        paths_off=sum(sorted(v) != list(range(1, len(v) + 1)) for v in versions.values()),
        rows_astray=len(rows) - len(sound),
        objects_astray=sum(
            key not in owner or not key.startswith(f"{owner[key]}/") for key in objects
        ),
        lost=sum(
            (f"{PREFIX}/{a.save.user}", a.save.path, a.save.version, a.save.sha256) not in sound
            for a in acks
        ),
    )


def measure_baseline(base: Path, plan: list[list[Save]], args: argparse.Namespace) -> Phase:
    """The same load on the same number of servers without bookstore."""
    with loaded_servers(base, plan, None, args) as (_, phase):
        return phase


def measure_bookstore(
    base: Path,
    plan: list[list[Save]],
    args: argparse.Namespace,
    moto: MotoServer,
    reader: IndexReader,
) -> tuple[Phase, Archive]:
    """The load on bookstore servers, then the drain, the operator's SQL and the audit.
    With ``args.service`` replicas, the servers push to the archive service behind a
    real JupyterHub (and nginx, for more than one replica) instead of archiving."""
    shared = bookstore_env(moto, reader.url)

    def with_credentials(_user: str) -> dict[str, str]:
        return shared

    with ExitStack() as stack:
        env = with_credentials
        if args.service:
            env = stack.enter_context(archive_service(base / "hub", shared, args.service))
        return measure_load(base, plan, args, env, moto, reader)


@contextmanager
def archive_service(
    base: Path, settings: dict[str, str], replicas: int
) -> Iterator[Callable[[str], dict[str, str]]]:
    """The archive service, ``replicas`` of it, registered with a JupyterHub; gives each
    user's server environment, as the Hub's spawner would: the service's URL and a token
    of the user's, and no store or index setting."""
    ports = [free_port() for _ in range(replicas)]
    with ExitStack() as stack:
        url = f"http://127.0.0.1:{ports[0]}"
        if replicas > 1:
            upstreams = [f"127.0.0.1:{port}" for port in ports]
            url = stack.enter_context(LoadBalancer(base / "nginx", upstreams)).url
        hub = Hub(base, url)
        for number, port in enumerate(ports):
            replica = ArchiveService(base / f"replica-{number}", hub, port, settings)
            stack.enter_context(replica)
        stack.enter_context(hub)
        wait_for(lambda: hub.routes_to(f"/services/{SERVICE}/api/health"), 60)
        users = ServiceApi(hub)

        def env(user: str) -> dict[str, str]:
            return {
                "BOOKSTORE_SERVICE_URL": f"{hub.url}/services/{SERVICE}/",
                "JUPYTERHUB_API_TOKEN": users.token(user),
            }

        yield env


def measure_load(
    base: Path,
    plan: list[list[Save]],
    args: argparse.Namespace,
    env: Callable[[str], dict[str, str]],
    moto: MotoServer,
    reader: IndexReader,
) -> tuple[Phase, Archive]:
    """The load on servers with ``env``, then the drain, the operator's SQL and the audit."""
    with loaded_servers(base, plan, env, args) as (servers, phase):
        drain_started = time.perf_counter()
        drained = wait_drained(servers, reader, len(phase.acks), args.drain_timeout)
        drain_seconds = time.perf_counter() - drain_started
        connections = int(reader.query(CONNECTIONS_SQL)[0][0]) - 1  # less the reader's own
        warnings = log_warnings(servers)
    latency = reader.query(LATENCY_SQL, workspaces=f"{PREFIX}/%")[0]
    rows = reader.query(ROWS_SQL, workspaces=f"{PREFIX}/%")
    checked = audit(phase.acks, rows, moto.objects(BUCKET))
    return phase, Archive(drained, drain_seconds, connections, warnings, latency, checked)


def postgres_line(reader: IndexReader) -> str:
    """The index server's version and durability settings; refuses to measure with fsync off."""
    names = ("server_version", "fsync", "synchronous_commit", "max_connections")
    version, fsync, commit, connections = (reader.query(f"SHOW {name}")[0][0] for name in names)
    if fsync != "on":
        raise RuntimeError("PostgreSQL runs with fsync off: the figures would flatter the index")
    return (
        f"PostgreSQL {version} (fsync {fsync}, synchronous_commit {commit}, "
        f"max_connections {connections})"
    )


def print_progress(name: str, phase: Phase) -> None:
    """One line as each run ends: the whole benchmark takes minutes."""
    print(
        f"  {name}: {len(phase.start_each)} servers answering after "
        f"{phase.started_seconds:.1f} s, {len(phase.acks)} saves acknowledged",
        flush=True,
    )


def figures(phase: Phase) -> dict[str, float]:
    """The figures both runs have, by label."""
    latencies = [ack.seconds * 1000 for ack in phase.acks]
    cuts = statistics.quantiles(latencies, n=20, method="inclusive")
    load_seconds = max(ack.sent + ack.seconds for ack in phase.acks)
    return {
        "all servers answering (s)": phase.started_seconds,
        "start-up of one server, p50 (s)": statistics.median(phase.start_each),
        "save acknowledged, p50 (ms)": cuts[9],
        "save acknowledged, p95 (ms)": cuts[18],
        "saves/s achieved": len(phase.acks) / load_seconds,
        "RSS of all servers (MiB)": phase.rss_total_kb / 1024,
        "RSS peak of one server (MiB)": phase.rss_peak_kb / 1024,
    }


def print_comparison(phase: Phase, baseline: Phase | None) -> None:
    """bookstore's figures beside the baseline's, with the ratio."""
    ours = figures(phase)
    theirs = figures(baseline) if baseline is not None else {}
    print(f"{'':34} {'bookstore':>10} {'baseline':>10} {'ratio':>7}")
    for label, value in ours.items():
        other = theirs.get(label)
        compared = "" if other is None else f"{other:10.1f} {value / other:7.2f}"
        print(f"{label:34} {value:10.1f} {compared}")


def print_archive(plan: list[list[Save]], phase: Phase, archive: Archive) -> None:
    """The figures only bookstore has, and the audit."""
    planned = [save for saves in plan for save in saves]
    load_seconds = max(ack.sent + ack.seconds for ack in phase.acks)
    latency = archive.latency
    checked = archive.audit
    print(f"users: {len(plan)}")
    print(f"saves total: {len(phase.acks)} acknowledged of {len(planned)} planned")
    print(
        f"saves/s: offered {len(planned) / max(save.at for save in planned):.2f} (the schedule), "
        f"achieved {len(phase.acks) / load_seconds:.2f} over the {load_seconds:.1f} s load window"
    )
    print(f"every server archiving (index migrated, checked): {phase.ready_seconds:.1f} s")
    print(
        f"archive latency (SQL on archive_latency): p50 {latency.p50_ms:.1f} ms, "
        f"p95 {latency.p95_ms:.1f} ms, max {latency.max_ms:.1f} ms over {latency.versions} versions"
    )
    print(
        f"backlogs drained {archive.drain_seconds:.1f} s after the last acknowledgement"
        + ("" if archive.drained else " (NOT drained by the deadline)")
    )
    print(f"PostgreSQL connections held by the servers after the load: {archive.connections}")
    print(f"bookstore warnings in the server logs: {sum(archive.warnings.values())}")
    for message, count in archive.warnings.most_common(3):
        print(f"  {count} x {message}")
    print(
        f"audit: {checked.rows} index rows; users whose rows != saves: {checked.users_off}; "
        f"paths whose versions are not 1..n: {checked.paths_off}; rows whose object is missing, "
        f"different or outside the user's prefix: {checked.rows_astray}; objects outside "
        f"their user's workspace or not indexed: {checked.objects_astray}"
    )
    print(f"lost: {checked.lost}")


def run(args: argparse.Namespace) -> bool:
    """Run both loads, print the figures, and return whether nothing was lost or misplaced."""
    plan = [plan_user(user_name(number), args) for number in range(args.users)]
    with ExitStack() as stack:
        base = Path(
            stack.enter_context(
                tempfile.TemporaryDirectory(prefix="bookstore-hub-", dir=args.workdir)
            )
        )
        moto = stack.enter_context(MotoServer(keep_state=False))
        moto.make_bucket(BUCKET)
        settings = {"max_connections": str(args.pg_max_connections)}
        postgres = PostgresServer(durable=True, settings=settings)
        stack.callback(postgres.close)
        reader = IndexReader(postgres.create_database())
        stack.callback(reader.close)
        print(
            f"multi-user load: {code_fingerprint()}\n"
            f"  {args.users} users, one jupyter server each (started {args.start_parallel} at a "
            f"time), sharing one S3 bucket (moto) and one {postgres_line(reader)} index\n"
            + (
                f"  the servers push to the archive service ({args.service} replicas) under "
                "JupyterHub, and hold no credentials\n"
                if args.service
                else "  every server archives itself, with the bucket's and index's credentials\n"
            )
            + f"  per user: {args.notebooks} notebooks of {args.min_kb:g}-{args.max_kb:g} KB, "
            f"{args.saves} saves, think time {args.think:g} s mean (0.5-1.5x)\n{machine_line()}",
            flush=True,
        )
        baseline = None if args.no_baseline else measure_baseline(base / "baseline", plan, args)
        if baseline is not None:
            print_progress("baseline (no bookstore)", baseline)
        phase, archive = measure_bookstore(base / "bookstore", plan, args, moto, reader)
        print_progress("bookstore", phase)
    print(f"after the run: {machine_line()}\n")
    print_comparison(phase, baseline)
    print()
    print_archive(plan, phase, archive)
    return archive.drained and archive.audit.problems() == 0


def positive(kind: type[float] | type[int]) -> Callable[[str], float]:
    """An argparse type: a number above 0."""

    def parse(text: str) -> float:
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be above 0, not {text}")
        return value

    return parse


def main() -> None:
    """Parse the options and run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=positive(int), default=50)
    parser.add_argument("--notebooks", type=positive(int), default=3, help="per user")
    parser.add_argument("--saves", type=positive(int), default=8, help="per user")
    parser.add_argument(
        "--think", type=positive(float), default=8.0, help="mean seconds between saves"
    )
    parser.add_argument("--min-kb", type=float, default=20.0, help="smallest notebook, KB")
    parser.add_argument("--max-kb", type=float, default=50.0, help="largest notebook, KB")
    parser.add_argument(
        "--start-parallel", type=positive(int), default=2, help="servers starting at once"
    )
    parser.add_argument("--drain-timeout", type=float, default=180.0, help="seconds")
    parser.add_argument(
        "--pg-max-connections",
        type=positive(int),
        default=300,
        help="each server's pool keeps up to 5 connections: size it as a deployment must",
    )
    parser.add_argument(
        "--service",
        type=int,
        default=0,
        metavar="REPLICAS",
        help="servers push to the archive service (this many replicas, behind nginx if more "
        "than one) under a real JupyterHub, instead of archiving themselves",
    )
    parser.add_argument("--workdir", default=None, help="parent of the servers' directories")
    parser.add_argument(
        "--no-baseline", action="store_true", help="skip the same load on servers without bookstore"
    )
    args = parser.parse_args()
    if args.users * args.saves < 2:
        parser.error("percentiles need at least 2 saves in all")
    sys.exit(0 if run(args) else 1)


if __name__ == "__main__":
    main()
