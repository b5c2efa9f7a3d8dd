"""What reading history through the archive service costs a user, against direct mode.

What is measured, in one invocation, on real processes: two ``jupyter server``
processes with the same notebook and the same ``--versions`` saves of it,

* direct mode: bookstore archiving to a local store and a SQLite index itself;
* service mode: the same server pushing to a ``bookstore-service`` replica
  (local store, SQLite index) registered with a JupyterHub, reached through
  the Hub's proxy with the user's token, as on a hub;

then, alternating between the two, ``--rounds`` of each request the checkpoint
picker and the History panel make: the checkpoint list, a page of 50 versions
newest first, one version's bytes, and a diff's summary. Each request is timed
from the client; medians and p95 in milliseconds, and service over direct. No
timing is asserted.

The extra time is the hops: the server asks the service (through the Hub's
proxy), which asks the Hub who the token belongs to (answers kept 10 s), then
reads its index and store as direct mode does.

Run: ``python -m benchmarks.service_history_reads`` (``--rounds 20`` for a quick run).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from benchmarks._common import code_fingerprint, machine_line
from tests.support.hub import SERVICE, ArchiveService, Hub, ServiceApi
from tests.support.jupyter_process import JupyterServer, notebook, wait_for
from tests.support.moto_server import free_port

PATH = "analysis.ipynb"
PAGE = 50

REQUESTS: dict[str, Callable[[int], str]] = {
    "checkpoint list": lambda _: f"/api/contents/{PATH}/checkpoints",
    "page of 50, newest first": lambda _: (
        f"/api/bookstore/versions/{PATH}?order=newest&limit={PAGE}"
    ),
    "one version's bytes": lambda n: f"/api/bookstore/content/{n}/{PATH}",
    "diff summary": lambda n: f"/api/bookstore/diff/{n}/{PATH}?to={n + 1}&format=summary",
}
"""Each request, given a version number to ask about."""


def fill(server: JupyterServer, versions: int) -> None:
    for n in range(versions):
        server.save(PATH, notebook(f"draft {n}"))
    server.wait_archived(timeout=300)


def timed(server: JupyterServer, url: str) -> float:
    started = time.perf_counter()
    answer = server.api("GET", url)
    elapsed = (time.perf_counter() - started) * 1000
    if answer.status_code != 200:
        raise SystemExit(f"{url} answered {answer.status_code}: {answer.text[:300]}")
    return elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(fraction * len(ordered)) - 1)]


def run(args: argparse.Namespace) -> None:
    with (
        tempfile.TemporaryDirectory(prefix="bookstore-service-reads-") as scratch,
        ExitStack() as up,
    ):
        base = Path(scratch)
        port = free_port()
        service_env = {
            "BOOKSTORE_LOCAL_STORE_DIR": str(base / "service-store"),
            "BOOKSTORE_INDEX_URL": f"sqlite+aiosqlite:///{base / 'service-index.sqlite'}",
        }
        hub = Hub(base / "hub", f"http://127.0.0.1:{port}")
        up.enter_context(ArchiveService(base / "service", hub, port, service_env))
        up.enter_context(hub)
        wait_for(lambda: hub.routes_to(f"/services/{SERVICE}/api/health"), timeout=60)
        servers = {
            "direct": up.enter_context(JupyterServer(base / "direct")),
            "service": up.enter_context(ServiceApi(hub).service_mode_server(base / "user", "ada")),
        }
        for server in servers.values():
            fill(server, args.versions)
        times: dict[tuple[str, str], list[float]] = {}
        for round_number in range(args.rounds):
            number = 1 + round_number % (args.versions - 1)
            for name, url in REQUESTS.items():
                for kind, server in servers.items():
                    times.setdefault((name, kind), []).append(timed(server, url(number)))

    print(f"{args.versions} versions of one notebook; {args.rounds} rounds of each request")
    print(f"{'request':<28}{'direct p50':>12}{'service p50':>13}{'ratio':>8}{'p95 d/s':>16}")
    for name in REQUESTS:
        direct, service = times[(name, "direct")], times[(name, "service")]
        d50, s50 = statistics.median(direct), statistics.median(service)
        p95 = f"{percentile(direct, 0.95):.1f}/{percentile(service, 0.95):.1f}"
        print(f"{name:<28}{d50:>10.1f}ms{s50:>11.1f}ms{s50 / d50:>7.2f}x{p95:>16}")
    print(code_fingerprint())
    print(machine_line())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=60, help="saves of the notebook")
    parser.add_argument("--rounds", type=int, default=100, help="of each request")
    args = parser.parse_args()
    if args.versions < 2:
        parser.error("--versions must be at least 2: a diff needs two")
    run(args)


if __name__ == "__main__":
    sys.exit(main())
