"""The layout keeps its arrows: every module imports, no import cycle outside the engine, and no
module reaches into another's private (_underscore) names.

The import graph is read with ``ast`` from the source (every ``import`` / ``from ... import``,
at module level or inside a function: a lazy import is still an arrow).  Cycles are allowed
only inside the engine group (tensor, autograd, ops, nn), whose modules are one unit.
``KNOWN_*`` list what other work in progress still has to clear, by owner (an entry that no
longer occurs is harmless: delete it when its owner's work lands).
"""
import ast
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "deltalab"
ENGINE = ("deltalab.tensor", "deltalab.autograd", "deltalab.ops", "deltalab.nn")

# cycles not yet cleared, as sorted tuples of their modules (owner in the comment)
KNOWN_CYCLES = set()
# (importing module, imported module, private name) not yet cleared (owner in the comment)
KNOWN_PRIVATE_IMPORTS = set()


def module_files():
    """{module name: path} of every module of the package."""
    found = {}
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = module_files()


def resolve(module, level, target, modules=MODULES):
    """The absolute name of ``from <level dots><target>`` written in ``module``."""
    if level == 0:
        return target
    is_package = modules[module].name == "__init__.py"
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([target] if target else []))


def imports_of(module, modules=MODULES):
    """[(imported module, names taken from it, line)] of every import in ``module``."""
    tree = ast.parse(modules[module].read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = resolve(module, node.level, node.module, modules)
            names = []
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                if sub in modules:  # `from . import files`: the submodule itself
                    found.append((sub, [], node.lineno))
                else:
                    names.append(alias.name)
            if names:
                found.append((source, names, node.lineno))
    return [(target, names, line) for target, names, line in found
            if target == PACKAGE or target.startswith(PACKAGE + ".")]


def known_module(name, modules=MODULES):
    """``name`` or the nearest enclosing module that exists (``deltalab.ops.conv.Conv2d`` → ops.conv)."""
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def graph():
    return {m: {known_module(t) for t, _, _ in imports_of(m)} - {m} for m in MODULES}


def strongly_connected(edges):
    """Tarjan's components, iteratively."""
    index, low, on_stack, stack, components, counter = {}, {}, set(), [], [], [0]
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    item = stack.pop()
                    on_stack.discard(item)
                    component.append(item)
                    if item == node:
                        break
                components.append(tuple(sorted(component)))
    return components


def in_engine(module):
    return any(module == e or module.startswith(e + ".") for e in ENGINE)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_every_module_imports(module):
    importlib.import_module(module)


def test_no_import_cycle_outside_the_engine():
    cycles = {c for c in strongly_connected(graph()) if len(c) > 1 and not all(in_engine(m) for m in c)}
    assert cycles - KNOWN_CYCLES == set(), "import cycles outside the engine group"


def test_the_finder_sees_a_cycle():
    assert ("a", "b") in strongly_connected({"a": {"b"}, "b": {"a", "c"}, "c": set()})


def private_imports(modules=MODULES):
    """(module, imported module, name) for every _underscore name one module takes from another:
    ``from x import _name``, or ``x._name`` on a deltalab module imported as ``x``."""
    found = set()
    for module in modules:
        tree = ast.parse(modules[module].read_text(encoding="utf-8"))
        aliases = {}
        for target, names, _ in imports_of(module, modules):
            for name in names:
                owner = known_module(target, modules)
                if name.startswith("_") and not name.startswith("__") and owner != module:
                    found.add((module, owner, name))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                source = resolve(module, node.level, node.module, modules)
                for alias in node.names:
                    if f"{source}.{alias.name}" in modules:
                        aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")
                    and aliases[node.value.id] != module):
                found.add((module, aliases[node.value.id], node.attr))
    return found


def test_no_module_takes_another_modules_private_names():
    found = private_imports()
    assert found - KNOWN_PRIVATE_IMPORTS == set(), "private names taken from another module"


def test_the_private_name_finder_sees_both_forms(tmp_path):
    """``from x import _name`` and ``x._name`` on an imported deltalab module are both found."""
    fake = {"deltalab.a": tmp_path / "a.py", "deltalab.b": tmp_path / "b.py"}
    fake["deltalab.a"].write_text("from . import b\nb._secret()\nfrom .b import _other\n")
    fake["deltalab.b"].write_text("")
    assert private_imports(fake) == {("deltalab.a", "deltalab.b", "_secret"), ("deltalab.a", "deltalab.b", "_other")}
