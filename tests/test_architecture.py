"""The package's shape, read from its source with `ast` (nothing is imported): no import circles, `rl` never
imports demo code, `rewards` never imports `objectives`, no module over 400 lines, and every function-local import
of a video2reward module or a third-party module says why it is local.

The rules read every `import a.b` and `from a import b` (b counts as the submodule a.b where one exists, else as
a name from a's __init__), at module level and inside functions; a package's __init__ is a module of its own.
Imports under `if TYPE_CHECKING:` never run, so they count for the layering rules but not for circles."""

from __future__ import annotations

import ast
import io
import sys
import tokenize
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = "video2reward"
SRC = Path(__file__).resolve().parents[1] / "src"
MAX_LINES = 400


@dataclass(frozen=True)
class Import:
    importer: str  # the module holding the statement
    target: str  # the module it resolves to (a module of the package, or a top-level third-party name)
    path: Path
    line: int
    end_line: int
    local: bool  # inside a function body
    type_only: bool  # under `if TYPE_CHECKING:`
    guarded: bool = False  # in the body of a `try:` that catches ImportError (an optional dependency: says why)

    def where(self) -> str:
        return f"{self.path.relative_to(SRC.parent)}:{self.line}"


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def find_modules(root: Path, package: str) -> dict[str, Path]:
    """Module name -> file, for every .py file of `package` under `root`."""
    return {module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _catches_import_error(node: ast.Try) -> bool:
    names = []
    for handler in node.handlers:
        types = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names += [t.id if isinstance(t, ast.Name) else getattr(t, "attr", "") for t in types if t is not None]
    return bool({"ImportError", "ModuleNotFoundError"} & set(names))


def _resolve(name: str, modules: dict[str, Path]) -> str:
    """The longest prefix of a dotted name that is a module of the package (or the name's top level, if none)."""
    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        if ".".join(parts[:k]) in modules:
            return ".".join(parts[:k])
    return parts[0]


def read_imports(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def add(node: ast.stmt, targets: list[str], local: bool, type_only: bool, guarded: bool) -> None:
        for target in targets:
            found.append(Import(module, target, path, node.lineno, node.end_lineno or node.lineno, local, type_only,
                                guarded))

    def visit(node: ast.AST, local: bool, type_only: bool, guarded: bool) -> None:
        if isinstance(node, ast.Import):
            add(node, [_resolve(alias.name, modules) for alias in node.names], local, type_only, guarded)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y / from .. import y
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            targets = []
            for alias in node.names:  # `from a import b`: the submodule a.b when there is one, else a itself
                sub = f"{source}.{alias.name}"
                targets.append(sub if sub in modules else _resolve(source, modules))
            add(node, sorted(set(targets)), local, type_only, guarded)
        inner = local or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        for child in ast.iter_child_nodes(node):
            body = node.body if isinstance(getattr(node, "body", None), list) else []
            in_body = any(child is statement for statement in body)
            visit(child, inner, type_only or (isinstance(node, ast.If) and _is_type_checking(node.test) and in_body),
                  guarded or (isinstance(node, ast.Try) and _catches_import_error(node) and in_body))

    visit(tree, False, False, False)
    return found


@cache
def package_imports() -> tuple[dict[str, Path], list[Import]]:
    modules = find_modules(SRC, PACKAGE)
    return modules, [i for module, path in modules.items() for i in read_imports(module, path, modules)]


def circles(modules: dict[str, Path], imports: list[Import]) -> list[list[str]]:
    """Strongly connected components of more than one module in the runtime import graph (Tarjan)."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for i in imports:
        if i.target in modules and i.target != i.importer and not i.type_only:
            graph[i.importer].add(i.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
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

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                connect(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def describe_circle(component: list[str], imports: list[Import]) -> str:
    members = set(component)
    edges = sorted({(i.where(), i.importer, i.target, i.local) for i in imports
                    if i.importer in members and i.target in members and i.importer != i.target and not i.type_only})
    lines = [f"  circle of {len(component)} modules: {', '.join(component)}"]
    lines += [f"    {where}: {importer} imports {target}{' (in a function)' if local else ''}"
              for where, importer, target, local in edges]
    return "\n".join(lines)


def comment_lines(path: Path) -> tuple[set[int], set[int]]:
    """(lines holding a comment, lines that are nothing but a comment), 1-based."""
    text = path.read_text()
    with_comment = {tok.start[0] for tok in tokenize.generate_tokens(io.StringIO(text).readline)
                    if tok.type == tokenize.COMMENT}
    only_comment = {n for n, line in enumerate(text.splitlines(), 1) if line.strip().startswith("#")}
    return with_comment, only_comment


def explained(statement: Import, imports_at: set[int], with_comment: set[int], only_comment: set[int]) -> bool:
    """A comment on the statement's lines, or on the line above it, or above the run of imports it belongs to; or
    a `try:` around it that catches ImportError (the dependency is optional, and the handler says what to install)."""
    if statement.guarded or any(n in with_comment for n in range(statement.line, statement.end_line + 1)):
        return True
    above = statement.line - 1
    while above in imports_at and above not in only_comment:  # `# why` above a block of local imports covers it
        above -= 1
    return above in only_comment


def needs_reason(target: str) -> bool:
    """A video2reward module or a third-party one (every non-standard-library import costs start-up time)."""
    top = target.split(".")[0]
    return top == PACKAGE or (top not in sys.stdlib_module_names and top != "__future__")


def unexplained_local_imports(imports: list[Import]) -> list[Import]:
    by_file: dict[Path, list[Import]] = {}
    for i in imports:
        if i.local:
            by_file.setdefault(i.path, []).append(i)
    bad = []
    for path, local in by_file.items():
        with_comment, only_comment = comment_lines(path)
        imports_at = {n for i in local for n in range(i.line, i.end_line + 1)}
        bad += [i for i in local if needs_reason(i.target) and not explained(i, imports_at, with_comment, only_comment)]
    return sorted(set(bad), key=lambda i: (str(i.path), i.line, i.target))


def in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


# ---------------------------------------------------------------------------------------------------- the rules


def test_no_import_circles() -> None:
    modules, imports = package_imports()
    if found := circles(modules, imports):
        pytest.fail("import circles (following the imports below leads back to where they start; break each circle "
                    "by moving the shared piece into a module both sides can import):\n"
                    + "\n".join(describe_circle(c, imports) for c in found), pytrace=False)


def layer_offenders(importer: str, forbidden: str) -> list[str]:
    _, imports = package_imports()
    return [f"  {i.where()}: {i.importer} imports {i.target}{' (in a function)' if i.local else ''}"
            for i in imports if in_package(i.importer, importer) and in_package(i.target, forbidden)]


def test_rl_never_imports_demo_code() -> None:
    if bad := layer_offenders("video2reward.rl", "video2reward.demo"):
        pytest.fail("video2reward.rl imports demo code; rl/ serves any environment, so move what it needs "
                    "(environment makers, experts, camera views) to video2reward.tasks:\n" + "\n".join(bad),
                    pytrace=False)


def test_rewards_never_import_objectives() -> None:
    if bad := layer_offenders("video2reward.rewards", "video2reward.objectives"):
        pytest.fail("video2reward.rewards imports video2reward.objectives; reward heads build on encoders, not on "
                    "the self-supervised objectives that pretrain them:\n" + "\n".join(bad), pytrace=False)


def test_no_module_over_400_lines() -> None:
    modules, _ = package_imports()
    sizes = sorted(((len(path.read_text().splitlines()), path) for path in modules.values()), reverse=True)
    if over := [f"  {path.relative_to(SRC.parent)}: {n} lines" for n, path in sizes if n > MAX_LINES]:
        pytest.fail(f"modules over {MAX_LINES} lines (split each by what its parts do):\n" + "\n".join(over),
                    pytrace=False)


def test_function_local_imports_say_why() -> None:
    _, imports = package_imports()
    if bad := unexplained_local_imports(imports):
        pytest.fail("function-local imports of video2reward or third-party modules with no comment saying why: "
                    "import each at the top of its module, or say why it is local in a comment on its line or the "
                    "line above (e.g. `# keeps v2r --help fast`):\n"
                    + "\n".join(f"  {i.where()}: {i.target}" for i in bad), pytrace=False)


# -------------------------------------------------------------------------- the checker itself, on a toy package


def write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return find_modules(root, "toy")


def toy_imports(root: Path, files: dict[str, str]) -> tuple[dict[str, Path], list[Import]]:
    modules = write_package(root, files)
    return modules, [i for m, p in modules.items() for i in read_imports(m, p, modules)]


def test_the_checker_resolves_submodules_relative_imports_and_packages(tmp_path: Path) -> None:
    modules, imports = toy_imports(tmp_path, {
        "toy/__init__.py": "",
        "toy/a.py": "import toy.b.c\nfrom toy import b\nfrom toy.b import c, name\nfrom . import d\n"
                    "import numpy.linalg\n",
        "toy/b/__init__.py": "from .c import x\nfrom .. import d\n",
        "toy/b/c.py": "def f():\n    from toy.a import y  # lazy\n",
        "toy/d.py": "",
    })
    edges = {(i.importer, i.target, i.local) for i in imports}
    assert edges == {("toy.a", "toy.b.c", False), ("toy.a", "toy.b", False), ("toy.a", "toy.d", False),
                     ("toy.a", "numpy", False), ("toy.b", "toy.b.c", False), ("toy.b", "toy.d", False),
                     ("toy.b.c", "toy.a", True)}
    assert circles(modules, imports) == [["toy.a", "toy.b", "toy.b.c"]]  # a -> b -> b.c -> a (in a function)


def test_the_checker_ignores_type_checking_imports_for_circles_only(tmp_path: Path) -> None:
    modules, imports = toy_imports(tmp_path, {
        "toy/__init__.py": "",
        "toy/a.py": "import toy.b\n",
        "toy/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy.a import A\n",
    })
    assert circles(modules, imports) == []
    assert [i.type_only for i in imports if i.importer == "toy.b"] == [False, True]


def test_the_checker_wants_a_reason_for_each_local_import(tmp_path: Path) -> None:
    _, imports = toy_imports(tmp_path, {
        "toy/__init__.py": "",
        "toy/a.py": ("def f():\n"
                     "    import json\n"  # standard library: no reason needed
                     "    import torch  # keeps v2r --help fast\n"
                     "    # optional dependency, and slow to import\n"
                     "    import onnx\n"
                     "    from toy import b\n"  # covered by the comment above the block
                     "    x = 1\n"
                     "    import numpy\n"  # no reason
                     "    from toy.b import (\n"
                     "        c)\n"  # no reason
                     "    try:\n"
                     "        import onnx\n"  # an optional dependency: the handler says so
                     "    except ImportError:\n"
                     "        raise\n"),
        "toy/b.py": "",
    })
    assert [(i.line, i.target) for i in unexplained_local_imports(imports)] == [(8, "numpy"), (9, "toy.b")]
