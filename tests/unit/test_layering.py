"""The packages' layering, read from the source with ``ast``: who may import whom.

Each package's ``__init__`` docstring says what it must not import; these tests hold the
code to it, including imports made inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS_OF_COMMON = {"store", "queue", "processes"}
"""The packages below the shared vocabulary, by concern."""

TOP_OF_COMMON = {
    path.stem
    for path in (ROOT / "common").iterdir()
    if (path.suffix == ".py" and path.stem != "__init__")
    or ((path / "__init__.py").is_file() and path.name not in LAYERS_OF_COMMON)
}
"""The shared vocabulary at the top of ``common``: its modules and its packages of one noun (settings
in ``config/``), everything but the layers."""


def vocabulary_files(name: str) -> list[Path]:
    """The files of one name at the top of ``common``: a module, or every module of a package."""
    path = ROOT / "common" / name
    return sorted(path.rglob("*.py")) if path.is_dir() else [path.with_suffix(".py")]


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, absolute, wherever in the file the import is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def modules_under(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Files under ``folder`` that import a module named in, or under, ``forbidden``."""
    found = {}
    for path in modules_under(folder):
        bad = sorted(
            name for name in imports_of(path) if any(name == f or name.startswith(f + ".") for f in forbidden)
        )
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    return found


@pytest.mark.parametrize(
    ("folder", "forbidden"),
    [
        ("common", ("api", "workers")),
        ("api", ("workers",)),
        ("workers/adapters", ("api",)),
        ("common/store", ("celery", "kombu", "billiard", "common.queue", "common.processes")),
        ("common/queue", ("common.processes",)),
    ],
)
def test_a_layer_never_imports_the_ones_above_it(folder: str, forbidden: tuple[str, ...]) -> None:
    assert modules_under(folder), f"{folder} holds no modules"
    assert offenders(folder, forbidden) == {}


def test_the_shared_vocabulary_imports_nothing_below_it() -> None:
    below = tuple(f"common.{layer}" for layer in LAYERS_OF_COMMON)
    found = {
        name: sorted(i for path in vocabulary_files(name) for i in imports_of(path) if i.startswith(below))
        for name in TOP_OF_COMMON
    }
    assert {name: bad for name, bad in found.items() if bad} == {}


def test_the_top_of_common_stays_small() -> None:
    assert len(TOP_OF_COMMON) <= 10, sorted(TOP_OF_COMMON)


@pytest.mark.parametrize(
    "package",
    ["common", "common/store", "common/queue", "common/processes", "workers/adapters/sketch"],
)
def test_each_package_says_what_it_owns_and_must_not_import(package: str) -> None:
    docstring = ast.get_docstring(ast.parse((ROOT / package / "__init__.py").read_text()))
    assert docstring and "import" in docstring


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    module = tmp_path / "late.py"
    module.write_text("def f():\n    from workers.tasks import run\n    import api.views\n")
    assert imports_of(module) == {"workers.tasks", "workers.tasks.run", "api.views"}
