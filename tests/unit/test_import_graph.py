"""The import graph of the project's packages (docs/architecture.md, "The floors").

Every module of `partners`, `commissions` and `referral_program` (not migrations, not
tests) is parsed, and every import between project modules is collected: at module level,
inside functions and under `TYPE_CHECKING` alike, since a function-level import only hides
a cycle. Within `partners` and `referral_program` no module imports itself back through
others; `partners` never imports `commissions`; `referral_program` imports neither app,
except the modules listed in GROUND_FLOOR_EXCEPTIONS, each with its reason.
"""

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("partners", "commissions", "referral_program")
SKIPPED_DIRS = {"migrations", "tests", "__pycache__"}

# The ground floor's modules that may import an app, and why.
GROUND_FLOOR_EXCEPTIONS = {
    "referral_program.urls": "the URL configuration names the apps' views",
    "referral_program.api_urls": "the API's URL configuration names the apps' API views",
}


def project_modules() -> dict[str, Path]:
    """Every module of PACKAGES by its dotted name (a package by its `__init__`)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if SKIPPED_DIRS & set(parts):
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


MODULES = project_modules()


def _imported_names(module: str, path: Path) -> Iterator[str]:
    """The dotted names each import statement of the module reaches (relative ones resolved),
    wherever the statement stands."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module
            for alias in node.names:
                submodule = f"{prefix}.{alias.name}"
                yield submodule if submodule in MODULES else prefix


def _project_targets(module: str, name: str) -> Iterator[str]:
    """The project modules that `module` importing `name` runs: the longest project module
    it names, and the packages above that one, but for the importing module's own packages
    (already being imported when it runs)."""
    parts = name.split(".")
    candidates = [".".join(parts[:end]) for end in range(len(parts), 0, -1)]
    found = [c for c in candidates if c in MODULES]
    own_packages = {".".join(module.split(".")[:end]) for end in range(1, module.count(".") + 1)}
    if found:
        yield found[0]
        yield from (package for package in found[1:] if package not in own_packages)


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        targets = set()
        for name in _imported_names(module, path):
            targets.update(_project_targets(module, name))
        targets.discard(module)
        graph[module] = targets
    return graph


GRAPH = import_graph()


def find_cycle(graph: dict[str, set[str]], package: str) -> list[str] | None:
    """A cycle among the package's modules, as [a, b, ..., a]; None when there is none."""
    inside = {m for m in graph if m == package or m.startswith(f"{package}.")}
    edges = {m: sorted(t for t in graph[m] if t in inside) for m in sorted(inside)}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in edges[module]:
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in edges:
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_the_graph_sees_module_and_function_level_imports():
    assert "partners.models" in GRAPH["partners.services.clicks"]
    assert "partners.services.clicks" in GRAPH["partners.tasks"]
    assert "commissions.models" in GRAPH["commissions.services.orders"]


def test_a_cycle_is_found_and_named():
    graph = {"p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "q.d": {"p.a"}}
    assert find_cycle(graph, "p") == ["p.a", "p.b", "p.c", "p.a"]
    assert find_cycle({"p.a": {"p.b"}, "p.b": set()}, "p") is None


@pytest.mark.parametrize(
    "package",
    ["partners", "referral_program", "commissions"],
)
def test_no_import_cycle_within_the_package(package):
    cycle = find_cycle(GRAPH, package)
    assert cycle is None, f"import cycle in {package}: {' -> '.join(cycle)}"


def _imports_of(floor: str, apps: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] == floor
        for target in targets
        if target.split(".")[0] in apps
    )


def test_partners_never_imports_commissions():
    assert _imports_of("partners", ("commissions",)) == []


def test_the_ground_floor_imports_no_app_but_its_listed_exceptions():
    found = _imports_of("referral_program", ("partners", "commissions"))
    unexpected = [line for line in found if line.split(" -> ")[0] not in GROUND_FLOOR_EXCEPTIONS]
    assert unexpected == []
