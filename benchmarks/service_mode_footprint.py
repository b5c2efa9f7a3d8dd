"""What bookstore costs each user's server: service mode against no bookstore, and direct mode.

What is measured: real ``jupyter server`` processes (without the jupyterlab,
notebook, lsp and terminals extensions, as in the tests), started one at a time
in rotation so the three kinds see the same machine:

* plain: bookstore disabled;
* service mode: ``BOOKSTORE_SERVICE_URL`` and ``JUPYTERHUB_API_TOKEN`` set, as
  the Hub's spawner sets them (no service needs to answer: the server pushes
  in the background);
* direct mode: bookstore archiving to S3 itself (a moto server) with a SQLite
  index, as a server with shared credentials does.

For each start: seconds until ``GET /api/status`` answers, then the resident
memory (``VmRSS``) after one notebook save has been acknowledged. Medians over
``--rounds`` starts of each kind; no timing is asserted.

Targets (issue: a server in service mode against a plain one): at most +15 MB
and +0.2 s.

Quick run::

    python -m benchmarks.service_mode_footprint --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import code_fingerprint, machine_line
from tests.support.jupyter_process import JupyterServer, notebook
from tests.support.moto_server import MotoServer, s3_env

TARGET_MB = 15.0
TARGET_SECONDS = 0.2
BUCKET = "footprint"


def measure(base: Path, kind: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds to answer, and MB resident after one save, of one fresh server."""
    server = JupyterServer(base, env=env, bookstore=kind != "plain")
    started = time.perf_counter()
    with server:
        seconds = time.perf_counter() - started
        server.save("first.ipynb", notebook("one save"))
        assert server.process is not None
        status = Path(f"/proc/{server.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        megabytes = int(fields["VmRSS"].split()[0]) / 1024
    return seconds, megabytes


def run(args: argparse.Namespace) -> bool:
    """Measure, print the figures, and return whether the targets are met."""
    print(f"user-server footprint, {code_fingerprint()}\n{machine_line()}", flush=True)
    kinds: dict[str, list[tuple[float, float]]] = {"plain": [], "service": [], "direct": []}
    with (
        tempfile.TemporaryDirectory(prefix="bookstore-footprint-") as tmp,
        MotoServer(keep_state=False) as moto,
    ):
        moto.make_bucket(BUCKET)
        envs = {
            "plain": {},
            "service": {
                "BOOKSTORE_SERVICE_URL": "http://127.0.0.1:9/services/bookstore/",
                "JUPYTERHUB_API_TOKEN": "a-token-the-hub-gave",
            },
            "direct": {**s3_env(BUCKET, moto.endpoint_url), "BOOKSTORE_WORKSPACE_PREFIX": "w"},
        }
        for round_number in range(args.rounds):
            for kind, env in envs.items():
                base = Path(tmp) / f"{kind}-{round_number}"
                kinds[kind].append(measure(base, kind, env))
                seconds, megabytes = kinds[kind][-1]
                print(f"  {kind:8s} round {round_number + 1}: {seconds:.2f} s, {megabytes:.1f} MB")

    medians = {
        kind: (statistics.median(s for s, _ in runs), statistics.median(m for _, m in runs))
        for kind, runs in kinds.items()
    }
    plain_s, plain_mb = medians["plain"]
    print()
    print(f"{'kind':14s} {'start-up':>10s} {'memory':>10s} {'vs plain':>22s}")
    for kind, (seconds, megabytes) in medians.items():
        extra = f"{seconds - plain_s:+.2f} s, {megabytes - plain_mb:+.1f} MB"
        print(f"{kind:14s} {seconds:9.2f}s {megabytes:8.1f}MB {extra:>22s}")
    service_s, service_mb = medians["service"]
    met = service_mb - plain_mb <= TARGET_MB and service_s - plain_s <= TARGET_SECONDS
    print(
        f"{'PASS' if met else 'FAIL'}: service mode at most +{TARGET_MB:.0f} MB and "
        f"+{TARGET_SECONDS} s over plain (medians of {args.rounds})"
    )
    return met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="starts of each kind")
    sys.exit(0 if run(parser.parse_args()) else 1)


if __name__ == "__main__":
    main()
