"""What both benchmarks share: notebook cells, and a line saying what was measured where."""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path
from typing import Any

import nbformat

import bookstore

CELL_SOURCE_BYTES = 1000


def cell_source(index: int, first_line: str = "") -> str:
    """About ``CELL_SOURCE_BYTES`` of plausible, deterministic Python source."""
    lines = [f"# cell {index}: load, transform and summarise one slice of the data"]
    if first_line:
        lines.insert(0, first_line)
    line = 0
    while sum(len(item) + 1 for item in lines) < CELL_SOURCE_BYTES:
        lines.append(f"value_{index}_{line} = transform(frame['column_{line}'], factor={line})")
        line += 1
    return "\n".join(lines)


def make_cell(index: int, first_line: str = "") -> Any:
    """A code cell with ~1 KB of source, a small stream output and the id ``cell-<index>``."""
    cell = nbformat.v4.new_code_cell(
        cell_source(index, first_line), id=f"cell-{index}", execution_count=index
    )
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"done {index}\n")]
    return cell


def make_notebook(cells: int, first_line: str = "") -> Any:
    """A notebook of ``cells`` cells; ``first_line`` opens the first cell's source."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [make_cell(i, first_line if i == 0 else "") for i in range(cells)]
    return nb


def bytes_per_cell() -> float:
    """How much one more cell adds to the notebook file."""
    return (len(nbformat.writes(make_notebook(11))) - len(nbformat.writes(make_notebook(1)))) / 10


def code_fingerprint() -> str:
    """bookstore's version and a digest of its sources: which code a run measured."""
    digest = hashlib.sha256()
    package = Path(bookstore.__file__).parent
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0")
        digest.update(source.read_bytes())
    return f"bookstore {bookstore.__version__} (sources sha256 {digest.hexdigest()[:12]})"


def machine_line() -> str:
    """CPUs, Python and the load average: the machine may be shared."""
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load}"
