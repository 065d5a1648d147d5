"""The house rules of sysprune/ (docs/ARCHITECTURE.md), checked over the real import graph and source tree.

The layers themselves are an import-linter contract in pyproject.toml (``make lint`` runs ``lint-imports``); these
tests add what a layers contract does not see: a cycle between two modules of one package, function-local imports
of sysprune itself (each must say why it is local), and module length. One rule is for tests/: they reach what Optuna
keeps private only through tests/_optuna.py (sysprune._compat or Optuna's public storage API).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sysprune"
MAX_LINES = 500
MAX_LOCAL_IMPORTS = 10


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), i.e. every import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycle_between_modules() -> None:
    graph = grimp.build_graph("sysprune", include_external_packages=False)
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for m in ("p.a", "p.b", "p.c"):
        graph.add_module(m)
    graph.add_import(importer="p.a", imported="p.b")
    graph.add_import(importer="p.b", imported="p.c")
    assert _cycles(graph) == []
    graph.add_import(importer="p.c", imported="p.a")
    assert _cycles(graph) == [["p.a", "p.b", "p.c"]]


def _local_sysprune_imports(path: Path) -> list[tuple[int, str]]:
    """(line, source line) of every import of sysprune made inside a function."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    module = _module_name(path)
    found = []
    for fn in ast.walk(ast.parse(text)):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom):
                target = node.module or ""
                if node.level:
                    base = module.split(".")[: len(module.split(".")) - node.level + (path.name == "__init__.py")]
                    target = ".".join([*base, target] if target else base)
            elif isinstance(node, ast.Import):
                target = node.names[0].name
            else:
                continue
            if target.startswith("sysprune"):
                found.append((node.lineno, lines[node.lineno - 1]))
    return found


def test_function_local_imports_of_sysprune_are_few_and_each_says_why() -> None:
    local = [(p.relative_to(PACKAGE.parent), n, line) for p in _sources() for n, line in _local_sysprune_imports(p)]
    assert len(local) <= MAX_LOCAL_IMPORTS, local
    uncommented = [(str(p), n) for p, n, line in local if "#" not in line]
    assert uncommented == [], "a function-local import must say why it is local (a comment on its line)"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_no_module_is_longer_than_the_limit(path: Path) -> None:
    n = len(path.read_text(encoding="utf-8").splitlines())
    assert n <= MAX_LINES, f"{path.name}: {n} lines; split it along its sections"


# -- the tests reach Optuna through public seams (tests/_optuna.py) ----------------------------------------------
TESTS = Path(__file__).resolve().parent
#: Optuna's private attributes that sysprune._compat wraps (``trial._trial_id``, ``study._storage``, ...).
OPTUNA_PRIVATE = re.compile(r"\.(_trial_id|_storage|_study_id|_get_latest_trial|_backend)\b(?!\s*import)")


def optuna_privates(text: str) -> list[tuple[int, str]]:
    """(line, source line) of every use of one of Optuna's private attributes, code and code in strings alike."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if OPTUNA_PRIVATE.search(line)]


def test_the_private_attribute_finder_finds_them() -> None:
    text = 'a = t._trial_id\nb = study._storage.get(study._study_id)\nsrc = "x._backend"\nc = _compat.trial_id(t)\n'
    assert [n for n, _ in optuna_privates(text)] == [1, 2, 3]
    assert optuna_privates("from optuna_dashboard.artifact._backend import list_trial_artifacts\n") == []


def test_tests_use_no_private_optuna_attribute() -> None:
    here = Path(__file__).resolve()  # this file names them on purpose, in the finder's own test
    found = {
        str(p.relative_to(TESTS.parent)): hits
        for p in sorted(TESTS.rglob("*.py"))
        if p != here and (hits := optuna_privates(p.read_text(encoding="utf-8")))
    }
    assert found == {}, "use tests/_optuna.py (trial_id, storage_of, study_id, study_system_attrs) instead"


def test_import_sysprune_loads_the_extension_api_only_and_every_public_name_resolves() -> None:
    """``import sysprune`` (what every trial fork server pays) leaves the runner, storage, pruners, figures and
    analysis to first use; each name of ``__all__`` still resolves, to the object its home module defines."""
    import subprocess
    import sys

    code = (
        "import sys, sysprune\n"
        "heavy = ('sysprune.study._runner', 'sysprune.storage._step_table', 'sysprune.pruners', 'sysprune.plot',"
        " 'sysprune.analysis', 'sysprune.spec')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "import importlib\n"
        "for name in sysprune.__all__:\n"
        "    value = getattr(sysprune, name)\n"
        "    home = sysprune._LAZY.get(name)\n"
        "    if home is not None:\n"
        "        module = importlib.import_module(home)\n"
        "        assert value is (module if home == 'sysprune.' + name else getattr(module, name)), name\n"
        "print(len(sysprune.__all__), sorted(set(sysprune._LAZY) - set(sysprune.__all__)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded, names = out.stdout.splitlines()
    assert loaded == "[]"
    assert names.endswith(" []")  # every lazy name is public
