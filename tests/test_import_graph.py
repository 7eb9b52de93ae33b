"""The layout ARCHITECTURE.md draws, checked on the code: every import (at module level and inside
functions) between trajsr's modules, read with :mod:`ast`."""
import ast
import subprocess
import sys

from .conftest import ROOT

PACKAGE = ROOT / "trajsr"
#: modules above both rooms: they may use interpolation and propagation together
ABOVE = {"trajsr.cli", "trajsr.cli_reports", "trajsr.options", "trajsr.adapt", "trajsr.demo", "trajsr"}


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict:
    """Module -> the trajsr modules it imports anywhere in its text."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1]) if node.level else ""
                target = ".".join(x for x in (base, node.module) if x)
                for alias in node.names:  # `from . import x` imports the module x; `from .m import f` the module m
                    deps.add(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target)
            elif isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names}
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def cycles(graph) -> list:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, found = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_rooms_import_only_what_lies_below_them():
    graph = import_graph()
    for room, other in (("trajsr.interpolation", "trajsr.propagation"), ("trajsr.propagation", "trajsr.interpolation"),
                        ("trajsr.dynamics", "trajsr.interpolation"), ("trajsr.dynamics", "trajsr.propagation")):
        for module, deps in graph.items():
            if module.startswith(room):
                assert not [d for d in deps if d.startswith(other)], f"{module} imports {other}"
                assert not deps & ABOVE, f"{module} imports {deps & ABOVE}"


def test_the_graph_sees_function_level_imports():
    """A check that cannot fail is no check: the reader must find the lazy imports the code is full of."""
    graph = import_graph()
    assert "trajsr.interpolation.shooting" in graph["trajsr.adapt"]  # inside a function
    assert "trajsr.interpolation.calibrate" in graph["trajsr.cli"]  # inside a function
    assert "trajsr.trajectory" in graph["trajsr.io.h5"]  # at module level, relative


def test_help_imports_no_tensorflow():
    code = ("import sys\nfrom trajsr.cli import main\n"
            "for argv in (['--help'], ['upsample', '--help'], ['spectrum', '--help']):\n"
            "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_collecting_the_tests_imports_no_tensorflow():
    """`pytest -k NAME` starts in about a second: test modules import TensorFlow inside the tests that use it."""
    code = ("import sys, pytest\n"
            "pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', '-p', 'no:xdist', '-o', 'addopts=', "
            f"{str(ROOT / 'tests')!r}])\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_tensorflow_retracing_advice_is_kept_from_python_users():
    """trajsr traces its graphs once per batch size on purpose; TensorFlow's advice against that is dropped
    by a filter on TensorFlow's logger, its other warnings are not."""
    import logging

    from trajsr.backend import tf

    def passes(message) -> bool:
        return bool(tf.get_logger().filter(logging.LogRecord("tensorflow", logging.WARNING, __file__, 0, message,
                                                             None, None)))
    assert not passes("5 out of the last 5 calls to <function f> triggered tf.function retracing. Tracing is ...")
    assert passes("a warning of its own")
