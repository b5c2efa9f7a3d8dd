"""The package's architecture, checked: imports flow one way, and nothing imports in a circle.

Every import counts, including those under ``TYPE_CHECKING`` and inside functions:
a lazy import hides a dependency from the import system, not from a reader.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import bookstore

PACKAGE = Path(bookstore.__file__).parent

#: Each layer may import only from layers listed after it (and from itself).
LAYERS = [
    (
        "surfaces",
        [
            "bookstore",
            "bookstore.archive",
            "bookstore.server",
            "bookstore.cli",
            "bookstore.service",
        ],
    ),
    ("services", ["bookstore.history", "bookstore.service_history", "bookstore.factory"]),
    ("archiving", ["bookstore.archiving"]),
    ("store, index and settings", ["bookstore.store", "bookstore.index", "bookstore.config"]),
    ("core", ["bookstore.core", "bookstore._version"]),
]


def module_name(file: Path) -> str:
    parts = file.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(file): file for file in PACKAGE.rglob("*.py")}


def imported(name: str) -> Iterator[str]:
    """Every bookstore module ``name`` imports, anywhere in its source."""
    file = MODULES[name]
    package = name if file.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            # ``from bookstore.core import keys`` imports the module bookstore.core.keys.
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base
                for alias in node.names
            ]
        else:
            continue
        yield from (target for target in targets if target in MODULES and target != name)


GRAPH = {name: sorted(set(imported(name))) for name in MODULES}


def layer_of(name: str) -> int:
    """The rank of the layer a module belongs to (0 is the top)."""
    best = None
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            owns = name == prefix or (prefix != "bookstore" and name.startswith(f"{prefix}."))
            if owns and (best is None or len(prefix) > best[1]):
                best = (rank, len(prefix))
    assert best is not None, f"{name} belongs to no layer: add it to LAYERS"
    return best[0]


def test_every_module_belongs_to_a_layer() -> None:
    for name in MODULES:
        layer_of(name)


def test_imports_only_go_down_the_layers() -> None:
    upward = [
        f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})"
        for name, targets in GRAPH.items()
        for target in targets
        if layer_of(target) < layer_of(name)
    ]
    assert upward == []


def test_no_layer_but_the_surfaces_imports_a_sibling_package() -> None:
    """Within a layer, packages stand side by side: the store never imports the index."""
    crossing = [
        f"{name} imports {target}"
        for name, targets in GRAPH.items()
        for target in targets
        if layer_of(target) == layer_of(name) > 0 and name.split(".")[:2] != target.split(".")[:2]
    ]
    assert crossing == []


def test_no_module_imports_itself_through_a_circle() -> None:
    visiting: list[str] = []
    done: set[str] = set()
    circles: list[str] = []

    def visit(name: str) -> None:
        if name in done:
            return
        if name in visiting:
            circles.append(" -> ".join([*visiting[visiting.index(name) :], name]))
            return
        visiting.append(name)
        for target in GRAPH[name]:
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(GRAPH):
        visit(name)
    assert circles == []


def test_the_checker_sees_lazy_and_type_checking_imports() -> None:
    """The graph would miss circles if it missed these; both forms are used in the package."""
    assert "bookstore.server.extension" in GRAPH["bookstore"]  # inside a function
    assert "bookstore.history" in GRAPH["bookstore.cli.runtime"]  # under TYPE_CHECKING


REPOSITORY = PACKAGE.parent


def test_tests_and_benchmarks_share_helpers_only_through_tests_support() -> None:
    """No test module imports another, and nothing reaches helpers by editing sys.path."""
    offenders = []
    for file in sorted([*REPOSITORY.glob("tests/**/*.py"), *REPOSITORY.glob("benchmarks/*.py")]):
        source = file.read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            offenders += [
                f"{file.relative_to(REPOSITORY)} imports {name}"
                for name in names
                if name.split(".")[-1].startswith("test_") or name.startswith("test_")
            ]
        if re.search(r"sys\.path\.(insert|append)|sys\.path\s*[+]?=", source):
            offenders.append(f"{file.relative_to(REPOSITORY)} edits sys.path")
    assert offenders == []
