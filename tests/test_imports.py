"""The package's layering: no import cycle between its modules, and no module importing another of
them inside a function (a hidden cycle); heavy optional third-party imports may stay lazy. The
tests' own layering: no test module imports another, nor conftest.py."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PROJECT = ("minisense", "cli")
SOURCES = sorted(p for package in PROJECT for p in (ROOT / package).rglob("*.py"))
TESTS = sorted((ROOT / "tests").glob("*.py"))
# What a module in tests/ may not import: a test module, or conftest.py (pytest loads it itself).
# helpers.py, plain constants and no tests, may be imported.
TEST_MODULES = {p.stem for p in TESTS if p.stem.startswith("test_") or p.stem == "conftest"}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts).removesuffix(".__init__")


def project_imports(node: ast.AST, importer: str) -> list[str]:
    """The project modules an import statement names (``from minisense import a, b`` names both
    ``minisense.a`` and ``minisense.b`` when they are modules)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] in PROJECT]
    if not isinstance(node, ast.ImportFrom) or node.level or \
            (node.module or "").split(".")[0] not in PROJECT:
        return []
    modules = {module_name(p) for p in SOURCES}
    named = [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in modules]
    return named or [node.module]


def top_level_graph() -> dict[str, set[str]]:
    graph = {}
    for path in SOURCES:
        name = module_name(path)
        tree = ast.parse(path.read_text())
        graph[name] = {m for node in tree.body for m in project_imports(node, name)
                       if m != name and m not in PROJECT}
    return graph


def test_the_graph_sees_the_imports_it_should():
    graph = top_level_graph()
    assert "minisense.network" in graph["minisense.checkpoint"]
    assert "minisense.files" in graph["minisense.data"]
    assert "minisense.sense" in graph["cli.main"]


def test_no_import_cycle_between_the_package_modules():
    graph = top_level_graph()
    done, path = set(), []

    def visit(name):
        if name in path:
            cycle = path[path.index(name):] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        path.append(name)
        for other in sorted(graph.get(name, ())):
            visit(other)
        path.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


def test_the_textbook_tier_never_imports_the_fast_tier():
    """The textbook is read alone: it imports nothing of ``minisense.fast``, directly or through
    another project module."""
    graph = top_level_graph()
    for name in [n for n in graph if n.startswith("minisense.textbook")]:
        seen, todo = set(), [name]
        while todo:
            for other in graph.get(todo.pop(), ()):
                if other not in seen:
                    seen.add(other)
                    todo.append(other)
        assert not [m for m in seen if m.startswith("minisense.fast")], \
            f"{name} reaches the fast tier: {sorted(m for m in seen if 'fast' in m)}"


@pytest.mark.parametrize("path", SOURCES + TESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_project_module_is_imported_inside_a_function(path):
    tree = ast.parse(path.read_text())
    inside = [f"line {node.lineno}: {ast.unparse(node)}"
              for top in tree.body if not isinstance(top, (ast.Import, ast.ImportFrom))
              for node in ast.walk(top) if project_imports(node, module_name(path))]
    assert not inside, f"{path.name} imports project modules below its top level: {inside}"


def imported_modules(tree: ast.AST) -> set[str]:
    """The top-level names of the modules every import statement in ``tree`` names, at any depth
    (``from a.b import c`` names ``a``; ``from . import c``, with no module, names ``c``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names |= {node.module.split(".")[0]} if node.module else {a.name for a in node.names}
    return names


def test_no_test_module_imports_another_test_module_or_conftest():
    """What test modules share is a fixture in conftest.py (or a constant in helpers.py). An
    import ties one file's tests to another's internals, and fails under pytest's importlib
    import mode, where test modules cannot import each other by name."""
    assert imported_modules(ast.parse("import test_cli\ndef f():\n    from conftest import x\n"
                                      "from helpers import TINY")) == \
        {"test_cli", "conftest", "helpers"}                     # the check sees them all
    found = {path.name: sorted(imported_modules(ast.parse(path.read_text())) & TEST_MODULES
                               - {path.stem})
             for path in TESTS}
    assert not {name: modules for name, modules in found.items() if modules}, \
        "test modules import other test modules (share a fixture in conftest.py instead)"
