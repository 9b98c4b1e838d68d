"""Architecture contract: the package is a house with rooms, and imports only go down the stairs.

Every module under ``investigator/`` is parsed with :mod:`ast` (nothing is imported),
every import of an ``investigator`` module is collected -- at module level, inside
functions and under ``if TYPE_CHECKING:`` alike -- and four rules are checked:

* layers: an import must be allowed by :data:`ALLOWED` (the table in docs/architecture.md);
* cycles: the module graph has no import cycle (importing a package imports its ``__init__``);
* crypto: only ``investigator/_crypto.py`` imports ``cryptography``;
* local imports: no function-local import of an ``investigator`` module outside
  ``investigator/cli/`` unless :data:`LOCAL_IMPORT_ALLOWLIST` names the file with a reason.

The checking logic lives in plain functions over ``{module_name: source_text}`` so that
the second half of this file can test the checker itself on synthetic module sets.
"""

from __future__ import annotations

import ast
import shutil
from collections import deque
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = "investigator"
PACKAGE = Path(__file__).resolve().parents[2] / ROOT

# ---------------------------------------------------------------------------------------------
# The table. Keep it in step with docs/architecture.md.
# ---------------------------------------------------------------------------------------------

# Top-level modules that form the ground floor.
GROUND_MODULES = frozenset({"errors", "schema", "_crypto", "_fs", "textnorm", "_version", "verification", "tags",
                            "settings"})

# Layer names of the packages (and of the two root files) as they appear in ALLOWED.
ROOT_FACADE = "root"  # investigator/__init__.py
ROOT_MAIN = "__main__"  # investigator/__main__.py

_EVERY_LAYER = frozenset({"ground", "importers", "vault", "custody", "authority", "access", "analysis", "widgets",
                          "reports", "backup", "cli", "demo", ROOT_FACADE, ROOT_MAIN})

# layer -> the other layers it may import. A layer may always import itself (its own package).
ALLOWED: dict[str, frozenset[str]] = {
    "ground": frozenset({"ground"}),
    "importers": frozenset({"ground"}),
    "vault": frozenset({"ground", "importers"}),
    "custody": frozenset({"ground", "vault"}),
    "authority": frozenset({"ground", "vault", "custody"}),
    "access": frozenset({"ground", "vault", "custody", "authority", "analysis"}),  # analysis: case.search, on Dask too
    "analysis": frozenset({"ground"}),
    "widgets": frozenset({"ground", "analysis", "authority", "access"}),
    "reports": frozenset({"ground", "vault", "authority", "access", "analysis", "widgets"}),  # NOT custody
    "backup": frozenset({"ground", "vault", "custody", "authority", "access", "reports"}),
    "cli": _EVERY_LAYER,
    "demo": _EVERY_LAYER - {"cli"},
    ROOT_FACADE: _EVERY_LAYER - {"cli", "demo"},
    ROOT_MAIN: _EVERY_LAYER,
}
assert set(ALLOWED) == _EVERY_LAYER

# Function-local imports of investigator modules outside investigator/cli/, each with its reason.
# {"investigator/some/module.py": "why this module must import lazily"}. No entry may exist only
# to dodge an import cycle: break the cycle instead.
LOCAL_IMPORT_ALLOWLIST: dict[str, str] = {
    "investigator/__init__.py": "the s3:// witness factory: boto3 and the backup layer load only when an s3:// "
                                "witness is used, not on every 'import investigator'",
}

# Only this module may talk to the `cryptography` library.
CRYPTO_MODULE = f"{ROOT}._crypto"

RULES = ("layers", "cycles", "crypto", "local_imports")


# ---------------------------------------------------------------------------------------------
# Reading a tree
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModuleSet:
    """Source text of every module, by dotted name, and which of those names are package ``__init__`` files."""

    sources: Mapping[str, str]
    packages: frozenset[str]

    def path(self, module: str) -> str:
        """The module's file, relative to the repository root (for messages)."""
        if module in self.packages:
            return module.replace(".", "/") + "/__init__.py"
        return module.replace(".", "/") + ".py"


def modules_from_files(files: Mapping[str, str]) -> ModuleSet:
    """Turn ``{"investigator/vault/store.py": source}`` into a :class:`ModuleSet`."""
    sources: dict[str, str] = {}
    packages: set[str] = set()
    for rel, text in files.items():
        parts = list(Path(rel).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
            packages.add(".".join(parts))
        sources[".".join(parts)] = text
    return ModuleSet(sources, frozenset(packages))


def load_package(package_dir: Path) -> ModuleSet:
    """Read every ``*.py`` file under ``package_dir`` (the ``investigator`` directory)."""
    base = package_dir.parent
    return modules_from_files({path.relative_to(base).as_posix(): path.read_text(encoding="utf-8")
                               for path in sorted(package_dir.rglob("*.py"))})


# ---------------------------------------------------------------------------------------------
# Collecting imports
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Import:
    """One imported module: who imports it, where, whether inside a function, and the statement."""

    importer: str
    target: str
    line: int
    local: bool
    statement: str


def _statements(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement with a flag: is it inside a function (or lambda) body?"""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, local = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, local
        inner = local or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        stack.extend((child, inner) for child in ast.iter_child_nodes(node))


def _resolve_base(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module named by ``from <level dots><module> import ...``."""
    if not node.level:
        return node.module or ""
    parts = importer.split(".")
    if not is_package:
        parts = parts[:-1]  # a plain module's relatives start from its package
    if node.level - 1 > len(parts):
        raise ValueError(f"relative import beyond the top package in {importer}: {ast.unparse(node)}")
    parts = parts[:len(parts) - (node.level - 1)]
    if node.module:
        parts += node.module.split(".")
    return ".".join(parts)


def _is_ours(name: str) -> bool:
    return name == ROOT or name.startswith(ROOT + ".")


def all_imports(modules: ModuleSet) -> list[Import]:
    """Every module imported by every module, ``investigator`` and third-party alike.

    ``from pkg import name`` targets ``pkg.name`` when that is itself a module of the set,
    else ``pkg`` (its ``__init__``).
    """
    found: list[Import] = []
    for importer, text in sorted(modules.sources.items()):
        tree = ast.parse(text, filename=modules.path(importer))
        for node, local in _statements(tree):
            statement = ast.unparse(node)
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                base = _resolve_base(importer, importer in modules.packages, node)
                targets = []
                for alias in node.names:
                    sub = f"{base}.{alias.name}" if base else alias.name
                    targets.append(sub if alias.name != "*" and sub in modules.sources else base)
            for target in dict.fromkeys(targets):  # keep order, drop repeats
                found.append(Import(importer, target, node.lineno, local, statement))
    found.sort(key=lambda imp: (imp.importer, imp.line))  # stable: keeps the names of one statement in order
    return found


def investigator_imports(modules: ModuleSet) -> list[Import]:
    """The imports of ``investigator`` modules only."""
    return [imp for imp in all_imports(modules) if _is_ours(imp.target)]


# ---------------------------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------------------------

def layer_of(module: str) -> str | None:
    """The layer a dotted module name lives in, or None when the table does not know it."""
    if module == ROOT:
        return ROOT_FACADE
    parts = module.split(".")
    if parts[0] != ROOT:
        return None
    top = parts[1]
    if len(parts) == 2 and top == "__main__":
        return ROOT_MAIN
    if top in GROUND_MODULES:
        return "ground" if len(parts) == 2 else None
    if top in ALLOWED and top not in (ROOT_FACADE, ROOT_MAIN, "ground"):
        return top
    return None


def _unknown(module: str) -> str:
    top = module.split(".")[1]
    return (f"module {module!r} is in no layer: add {top!r} to the layer table in tests/unit/test_architecture.py "
            f"(GROUND_MODULES or ALLOWED) and to docs/architecture.md")


def check_layers(modules: ModuleSet, imports: list[Import] | None = None) -> list[str]:
    """Imports must go down the layer table (ALLOWED); every module must be in the table."""
    imports = investigator_imports(modules) if imports is None else imports
    problems = [f"{modules.path(m)}:1: {_unknown(m)}" for m in sorted(modules.sources) if layer_of(m) is None]
    for imp in imports:
        src, dst = layer_of(imp.importer), layer_of(imp.target)
        if src is None:
            continue  # already reported once for the whole module
        where = f"{modules.path(imp.importer)}:{imp.line}"
        if dst is None:
            problems.append(f"{where}: `{imp.statement}` imports {imp.target}; {_unknown(imp.target)}")
        elif dst != src and dst not in ALLOWED[src]:
            allowed = ", ".join(sorted(ALLOWED[src] - {src})) or "nothing"
            problems.append(f"{where}: layer {src!r} may not import layer {dst!r}: `{imp.statement}` "
                            f"({src} may import: {allowed})")
    return problems


def _strongly_connected(graph: Mapping[str, Collection[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the strongly connected components of ``graph``."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return components


def _shortest_cycle(graph: Mapping[str, Collection[str]], start: str, within: set[str]) -> list[str]:
    """The shortest path ``start -> ... -> start`` inside ``within`` (breadth first)."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph.get(node, ())):
            if child not in within:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError(f"{start} is on no cycle")  # cannot happen inside a component


def check_cycles(modules: ModuleSet, imports: list[Import] | None = None) -> list[str]:
    """No import cycles: every strongly connected component of the module graph is one module without a self-import."""
    imports = investigator_imports(modules) if imports is None else imports
    edges: dict[tuple[str, str], list[Import]] = {}
    graph: dict[str, set[str]] = {m: set() for m in modules.sources}
    for imp in imports:
        if imp.target in modules.sources:
            graph[imp.importer].add(imp.target)
            edges.setdefault((imp.importer, imp.target), []).append(imp)

    def chain(cycle: list[str]) -> str:
        lines = [" -> ".join(cycle)]
        for a, b in zip(cycle, cycle[1:]):
            hops = edges[(a, b)]
            kinds = ", ".join(f"{modules.path(a)}:{h.line}{' (function-local)' if h.local else ''} `{h.statement}`"
                              for h in hops)
            lines.append(f"    {a} -> {b}: {kinds}")
        return "\n".join(lines)

    problems = []
    for component in _strongly_connected(graph):
        members = set(component)
        if len(component) == 1:
            (only,) = component
            if only in graph[only]:
                problems.append(f"import cycle (self-import): {chain([only, only])}")
            continue
        shown: set[str] = set()
        chains = []
        for member in component:
            if member not in shown:
                cycle = _shortest_cycle(graph, member, members)
                shown.update(cycle)
                chains.append(chain(cycle))
        problems.append(f"import cycle among {len(component)} modules ({', '.join(component)}):\n  "
                        + "\n  ".join(chains))
    return problems


def check_crypto(modules: ModuleSet, imports: list[Import] | None = None) -> list[str]:
    """Only ``investigator/_crypto.py`` may import the ``cryptography`` library."""
    imports = all_imports(modules) if imports is None else imports
    return [f"{modules.path(imp.importer)}:{imp.line}: `{imp.statement}`: only {modules.path(CRYPTO_MODULE)} may "
            f"import cryptography; use investigator._crypto (layer {layer_of(imp.importer)!r} -> ground)"
            for imp in imports
            if (imp.target == "cryptography" or imp.target.startswith("cryptography."))
            and imp.importer != CRYPTO_MODULE]


def check_local_imports(modules: ModuleSet, imports: list[Import] | None = None,
                        allowlist: Mapping[str, str] = LOCAL_IMPORT_ALLOWLIST) -> list[str]:
    """No function-local import of an investigator module outside investigator/cli/ (unless allowlisted).

    The CLI imports command code lazily to keep ``investigator --help`` fast; anywhere else a
    function-local import tends to hide a cycle or an upward import, so it must be justified.
    """
    imports = investigator_imports(modules) if imports is None else imports
    return [f"{modules.path(imp.importer)}:{imp.line}: function-local import `{imp.statement}` "
            f"(layer {layer_of(imp.importer)!r} -> {layer_of(imp.target)!r}): move it to the top of the module, "
            f"or add the file with a reason to LOCAL_IMPORT_ALLOWLIST in tests/unit/test_architecture.py"
            for imp in imports
            if imp.local and layer_of(imp.importer) != "cli" and modules.path(imp.importer) not in allowlist]


def check(modules: ModuleSet, allowlist: Mapping[str, str] = LOCAL_IMPORT_ALLOWLIST) -> dict[str, list[str]]:
    """Run every rule; ``{rule: [violation, ...]}`` with an empty list for a rule that holds."""
    everything = all_imports(modules)
    ours = [imp for imp in everything if _is_ours(imp.target)]
    return {
        "layers": check_layers(modules, ours),
        "cycles": check_cycles(modules, ours),
        "crypto": check_crypto(modules, everything),
        "local_imports": check_local_imports(modules, ours, allowlist),
    }


# ---------------------------------------------------------------------------------------------
# The real tree
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def real_tree_report() -> dict[str, list[str]]:
    return check(load_package(PACKAGE))


@pytest.mark.parametrize("rule", RULES)
def test_real_tree_obeys(rule, real_tree_report):
    """The package itself keeps each architecture rule; the message lists every violation at once."""
    problems = real_tree_report[rule]
    assert not problems, f"{len(problems)} {rule} violation(s) (see docs/architecture.md):\n" + "\n".join(problems)


def test_allowlist_names_real_files_with_reasons():
    """Every allowlist entry points at an existing module outside the CLI and says why."""
    for path, reason in LOCAL_IMPORT_ALLOWLIST.items():
        assert (PACKAGE.parent / path).is_file(), f"LOCAL_IMPORT_ALLOWLIST: {path} does not exist"
        assert not path.startswith(f"{ROOT}/cli/"), f"LOCAL_IMPORT_ALLOWLIST: {path} is in the CLI; it needs no entry"
        assert reason.strip(), f"LOCAL_IMPORT_ALLOWLIST: {path} has no reason"


# ---------------------------------------------------------------------------------------------
# A test of the test: the checker on synthetic module sets
# ---------------------------------------------------------------------------------------------

CLEAN = {
    "investigator/__init__.py": "from investigator.vault.store import Archive\n",
    "investigator/__main__.py": "from investigator.cli import main\nmain()\n",
    "investigator/errors.py": "class InvestigatorError(Exception):\n    pass\n",
    "investigator/_crypto.py": "from cryptography.hazmat.primitives.ciphers.aead import AESGCM\nimport cryptography\n",
    "investigator/schema.py": "from investigator.errors import InvestigatorError\n",
    "investigator/importers/__init__.py": "from .slack import read\n",
    "investigator/importers/slack.py": "from ..schema import InvestigatorError\n\ndef read():\n    pass\n",
    "investigator/vault/__init__.py": "",
    "investigator/vault/store.py": ("from typing import TYPE_CHECKING\n"
                                    "from investigator import _crypto, errors\n"
                                    "from . import audit\n"
                                    "if TYPE_CHECKING:\n"
                                    "    from investigator.importers import read\n"),
    "investigator/vault/audit.py": "import investigator.errors\n",
    "investigator/custody/__init__.py": "",
    "investigator/custody/file.py": "from investigator.vault.store import audit\n",
    "investigator/authority/__init__.py": "",
    "investigator/authority/directory.py": ("from investigator.custody import file\n"
                                            "from investigator.vault import store\n"),
    "investigator/reports/__init__.py": "",
    "investigator/reports/run.py": "from investigator.authority.directory import x\n",
    "investigator/cli/__init__.py": ("def main():\n"
                                     "    from investigator.reports import run\n"
                                     "    from investigator.demo import cases\n"),
    "investigator/demo/__init__.py": "",
    "investigator/demo/cases.py": "import investigator\nfrom investigator.custody import file\n",
}


def _check_files(changes: Mapping[str, str | None]) -> dict[str, list[str]]:
    """Check CLEAN with some files replaced (or added; None removes one)."""
    files = {**CLEAN, **changes}
    return check(modules_from_files({path: text for path, text in files.items() if text is not None}))


def _only_failing(report: dict[str, list[str]]) -> set[str]:
    return {rule for rule, problems in report.items() if problems}


def test_checker_passes_a_clean_set():
    """The clean synthetic set (relative imports, TYPE_CHECKING, lazy CLI imports, demo -> root) passes every rule."""
    assert _check_files({}) == {rule: [] for rule in RULES}


def test_checker_resolves_imports():
    """Relative imports and ``from package import submodule`` land on the right modules."""
    imports = investigator_imports(modules_from_files(CLEAN))
    edges = {(imp.importer, imp.target) for imp in imports}
    assert ("investigator.importers", "investigator.importers.slack") in edges
    assert ("investigator.importers.slack", "investigator.schema") in edges
    assert ("investigator.vault.store", "investigator.vault.audit") in edges
    assert ("investigator.vault.store", "investigator._crypto") in edges
    assert ("investigator.vault.store", "investigator.importers") in edges  # a name of the package __init__
    assert ("investigator.authority.directory", "investigator.custody.file") in edges
    assert ("investigator.demo.cases", "investigator") in edges


def test_checker_fails_on_an_upward_import():
    """vault.store importing authority.directory is caught, naming file, line and both layers."""
    report = _check_files({"investigator/vault/store.py": "import json\n"
                                                          "from investigator.authority.directory import x\n"})
    # authority.directory imports vault.store, so the upward import also closes a cycle
    assert _only_failing(report) == {"layers", "cycles"}
    (problem,) = report["layers"]
    assert problem.startswith("investigator/vault/store.py:2:")
    assert "'vault'" in problem and "'authority'" in problem


def test_checker_fails_on_a_function_local_upward_import():
    """An upward import hidden in a function body is both a layer and a local-import violation."""
    report = _check_files({"investigator/vault/audit.py": "def f():\n    from investigator.reports import run\n"})
    assert _only_failing(report) == {"layers", "local_imports", "cycles"}  # reports.run -> ... -> vault.audit
    assert report["layers"][0].startswith("investigator/vault/audit.py:2:")
    assert report["local_imports"][0].startswith("investigator/vault/audit.py:2:")


def test_checker_fails_on_a_cycle_behind_a_function_local_import():
    """store -> audit at the top and audit -> store inside a function is a cycle, reported as a chain."""
    report = _check_files({"investigator/vault/audit.py": "def f():\n    from investigator.vault import store\n"})
    assert _only_failing(report) == {"cycles", "local_imports"}
    (problem,) = report["cycles"]
    assert "investigator.vault.audit -> investigator.vault.store -> investigator.vault.audit" in problem
    assert "investigator/vault/audit.py:2 (function-local)" in problem
    assert "investigator/vault/store.py:3" in problem


def test_checker_fails_on_a_self_import_and_a_package_cycle():
    """A module importing itself, and a package __init__ re-imported by its own submodule, are cycles."""
    report = _check_files({"investigator/vault/audit.py": "from investigator.vault import audit\n"})
    assert any("self-import" in p and "investigator.vault.audit -> investigator.vault.audit" in p
               for p in report["cycles"])
    report = _check_files({"investigator/vault/__init__.py": "from .store import x\n",
                           "investigator/vault/store.py": "from investigator.vault import y\n"})
    assert any("investigator.vault -> investigator.vault.store -> investigator.vault" in p for p in report["cycles"])


def test_checker_fails_on_cryptography_outside_crypto():
    """``import cryptography`` and ``from cryptography... import`` anywhere but _crypto.py are caught."""
    report = _check_files({"investigator/vault/audit.py": "import cryptography.x509\n",
                           "investigator/schema.py": "def f():\n    from cryptography.hazmat import x\n"})
    assert _only_failing(report) == {"crypto"}
    assert sorted(p.split(" ")[0] for p in report["crypto"]) == ["investigator/schema.py:2:",
                                                                  "investigator/vault/audit.py:1:"]


def test_checker_fails_when_demo_imports_cli():
    """The demo may import anything but the CLI."""
    report = _check_files({"investigator/demo/cases.py": "from investigator.cli import main\n"})
    assert _only_failing(report) == {"layers", "cycles"}  # the CLI imports demo.cases
    assert "layer 'demo' may not import layer 'cli'" in report["layers"][0]


def test_checker_fails_on_unknown_modules():
    """A module or package missing from the table must be added to it (and to docs/architecture.md)."""
    report = _check_files({"investigator/gadgets.py": "",
                           "investigator/vault/audit.py": "from investigator.gizmo import x\n"})
    assert len(report["layers"]) == 2
    assert all("docs/architecture.md" in p for p in report["layers"])


def test_checker_honours_the_allowlist():
    """An allowlisted file may import lazily; the CLI never needs an entry."""
    files = {**CLEAN, "investigator/reports/run.py": "def f():\n    from investigator.vault import store\n"}
    modules = modules_from_files(files)
    assert check_local_imports(modules)
    assert not check_local_imports(modules, allowlist={"investigator/reports/run.py": "optional heavy dependency"})


def test_checker_catches_a_planted_import_in_a_copy_of_the_real_package(tmp_path):
    """Planting ``from investigator.authority import directory`` in a copy of vault/store.py is reported."""
    copy = tmp_path / ROOT
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    store = copy / "vault" / "store.py"
    lines = store.read_text(encoding="utf-8").splitlines(keepends=True)
    tree = ast.parse("".join(lines))
    # the top of the module: after the docstring and `from __future__` (which must come first)
    after = max((node.end_lineno for node in tree.body[:2]
                 if (isinstance(node, ast.ImportFrom) and node.module == "__future__")
                 or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))), default=0)
    lines.insert(after, "from investigator.authority import directory\n")
    store.write_text("".join(lines), encoding="utf-8")

    report = check(load_package(copy))
    planted = [p for p in report["layers"] if p.startswith(f"investigator/vault/store.py:{after + 1}:")]
    assert len(planted) == 1, report["layers"]
    assert "layer 'vault' may not import layer 'authority'" in planted[0]
    assert "from investigator.authority import directory" in planted[0]


# --- settings enter at the edge -------------------------------------------------------------------------

# The only modules that may touch the process environment, and why (docs/architecture.md, "Edges").
ENVIRONMENT_EDGES = {
    "investigator/cli": "the CLI reads variables and prompts, then passes values down",
    "investigator/access/case.py": "open_case's keyword arguments fall back to INVESTIGATOR_* variables",
    "investigator/reports/notebook.py": "open_report_case is the report kernel's edge (session from the environment)",
    "investigator/reports/run.py": "sets the environment of the kernel papermill starts (secrets never as parameters)",
}


def environment_readers(files: Mapping[str, str]) -> list[str]:
    """``path:line`` of every use of ``os.environ`` / ``os.getenv`` / ``environ`` imported from os."""
    found = []
    for path, source in sorted(files.items()):
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "putenv") \
                    and isinstance(node.value, ast.Name) and node.value.id == "os":
                found.append(f"{path}:{node.lineno}")
            elif isinstance(node, ast.ImportFrom) and node.module == "os" \
                    and any(a.name in ("environ", "getenv") for a in node.names):
                found.append(f"{path}:{node.lineno}")
    return found


def _at_an_edge(where: str) -> bool:
    path = where.rsplit(":", 1)[0]
    return any(path == edge or path.startswith(edge + "/") for edge in ENVIRONMENT_EDGES)


def test_only_the_edges_read_the_environment():
    files = {str(p.relative_to(PACKAGE.parent)): p.read_text(encoding="utf-8") for p in PACKAGE.rglob("*.py")}
    outside = [w for w in environment_readers(files) if not _at_an_edge(w)]
    assert not outside, ("library code reads the environment; take a value (or a Settings) from the caller "
                         f"instead: {outside}")


def test_environment_check_catches_a_planted_read():
    planted = {"investigator/vault/store.py": "import os\nSECRET = os.environ.get('INVESTIGATOR_PASSPHRASE')\n",
               "investigator/authority/x.py": "from os import environ\n",
               "investigator/cli/main.py": "import os\nos.environ.get('X')\n"}
    found = environment_readers(planted)
    assert [w for w in found if not _at_an_edge(w)] == ["investigator/authority/x.py:1",
                                                          "investigator/vault/store.py:2"]
