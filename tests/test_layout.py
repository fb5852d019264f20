"""The architecture stays visible: every module has a floor, imports only run down, and nothing cycles.

The floors, top to bottom: the command line, the Python API, the use cases (what a user can do), a run
(its steps), the verdict, the static inspection, the images, the sandbox (backends, the harness and its
protocol) with the live data and Numerai's API, and the small utilities (support). A part may skip floors
downward, never import upward; imports inside functions count too. The harness runs inside the image and
imports nothing of ours; the front ends (cli/, api.py) import only the use cases and support; no module
uses another's private names; modules stay small enough to read.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path


from conftest import ROOT

# The part of a module is its first name below `runner` (runner.images.store -> images).
FLOORS = {
    "__main__": 10,
    "cli": 9,
    "api": 8,
    "usecases": 7,
    "run": 6,
    "verdict": 5,
    "inspection": 4,
    "images": 3,
    "sandbox": 2, "data": 2, "numerai_api": 2,
    "support": 1, "__init__": 1,
}
ISOLATED = {"runner.sandbox.harness", "runner.sandbox.confine"}  # run under the image's Python: import nothing of ours


def modules_of(package_dir: Path, package: str) -> dict[str, Path]:
    """{dotted module name: file} for every .py file of the package."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join([package, *parts])] = path
    return found


def imports_of(module: str, path: Path, known: set[str]) -> set[str]:
    """The modules of ours that `module` imports anywhere in its file (functions included)."""
    is_package = path.name == "__init__.py"
    here = module if is_package else module.rsplit(".", 1)[0]
    package_root = next(iter(known)).split(".")[0]
    out: set[str] = set()

    def add(target: str, names: list[str]) -> None:
        specific = [f"{target}.{n}" for n in names if f"{target}.{n}" in known]
        if specific:
            out.update(specific)
        if len(specific) < len(names) or not names:
            if target in known:
                out.add(target)

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == package_root:
                    out.add(alias.name if alias.name in known else alias.name.rsplit(".", 1)[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == package_root:
                target = node.module
            else:
                continue
            add(target, [a.name for a in node.names])
    out.discard(module)
    return out


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def layering_problems(package_dir: Path, package: str, floors: dict[str, int],
                      isolated: set[str] = frozenset()) -> list[str]:
    """Every way the package breaks its layering: unassigned modules, upward imports, cycles."""
    modules = modules_of(package_dir, package)
    graph = {m: imports_of(m, p, set(modules)) for m, p in modules.items()}
    problems = []
    for module in modules:
        if part_of(module) not in floors:
            problems.append(f"{module} has no floor: add its part {part_of(module)!r} to FLOORS")
    for module, targets in graph.items():
        if module in isolated and targets:
            problems.append(f"{module} must import nothing of ours, imports {sorted(targets)}")
        mine = floors.get(part_of(module))
        for target in sorted(targets):
            theirs = floors.get(part_of(target))
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(f"{module} (floor {mine}) imports {target} (floor {theirs}): upward")
    problems += [f"import cycle: {' -> '.join(cycle)}" for cycle in cycles(graph)]
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One example cycle per strongly connected component larger than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component) + [sorted(component)[0]])

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


FRONT_ENDS = ("runner.cli", "runner.api")  # what a user types or calls
FRONT_ENDS_MAY_USE = ("runner.usecases", "runner.support")  # beside themselves and runner (its version)


def front_end_problems(package_dir: Path, package: str, front_ends=FRONT_ENDS, allowed=FRONT_ENDS_MAY_USE) -> list[str]:
    """Every import by a front end of something below the use cases (their words come through
    runner.usecases.vocabulary)."""
    modules = modules_of(package_dir, package)
    problems = []
    for module, path in modules.items():
        if not module.startswith(front_ends):
            continue
        for target in sorted(imports_of(module, path, set(modules))):
            if target != package and not target.startswith(tuple(front_ends) + tuple(allowed)):
                problems.append(f"{module} imports {target}: a front end goes through the use cases")
    return problems


def private_name_problems(package_dir: Path, package: str) -> list[str]:
    """Every use of another module's private name (a leading underscore, not a dunder): imported from it, or
    read as an attribute of it."""
    modules = modules_of(package_dir, package)
    problems = []
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        here = module if is_package else module.rsplit(".", 1)[0]
        aliases: dict[str, str] = {}  # local name -> module of ours
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here.split(".")
                    target = ".".join(base[:len(base) - (node.level - 1)] + ([node.module] if node.module else []))
                elif (node.module or "").split(".")[0] == package:
                    target = node.module
                else:
                    continue
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:
                        aliases[alias.asname or alias.name] = f"{target}.{alias.name}"
                    elif alias.name.startswith("_") and not alias.name.startswith("__"):
                        problems.append(f"{module} imports {target}.{alias.name}, a private name")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name in modules and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                problems.append(f"{module} reads {aliases[node.value.id]}.{node.attr}, a private name")
    return sorted(set(problems))


# Lines a module may hold, so that it can be read at one sitting: the harness (one file the image runs, with
# no import of ours to lean on) is the only exception; the inspection's modules answer one question each.
MAX_LINES = 600
MAX_LINES_BY_PART = {"inspection": 500}
LONGER_ALLOWED = {"runner.sandbox.harness"}


def size_problems(package_dir: Path, package: str, most: int = MAX_LINES, by_part: dict[str, int] = MAX_LINES_BY_PART,
                  exempt: set[str] = frozenset()) -> list[str]:
    """Every module longer than its part allows."""
    problems = []
    for module, path in modules_of(package_dir, package).items():
        limit = by_part.get(part_of(module), most)
        lines = len(path.read_text().splitlines())
        if module not in exempt and lines > limit:
            problems.append(f"{module} has {lines} lines (at most {limit}): split it by concern")
    return problems


def test_runner_is_layered_without_cycles():
    problems = layering_problems(ROOT / "runner", "runner", FLOORS, ISOLATED)
    assert not problems, "\n".join(problems)


def test_no_module_is_too_long_to_read():
    problems = size_problems(ROOT / "runner", "runner", exempt=LONGER_ALLOWED)
    assert not problems, "\n".join(problems)


def test_the_front_ends_go_through_the_use_cases():
    """The command line and the Python API call the same use cases (and have nothing of the pipeline to drift)."""
    problems = front_end_problems(ROOT / "runner", "runner")
    assert not problems, "\n".join(problems)


def test_no_module_uses_another_modules_private_names():
    problems = private_name_problems(ROOT / "runner", "runner")
    assert not problems, "\n".join(problems)


def shadowing_problems(package_dir: Path, package: str) -> list[str]:
    """Every import inside a function that rebinds one of the function's parameters (`keep=keep` then passes
    the imported function where the caller's flag was meant)."""
    problems = []
    for module, path in modules_of(package_dir, package).items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            arguments = node.args
            params = {a.arg for a in arguments.posonlyargs + arguments.args + arguments.kwonlyargs}
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    for alias in inner.names:
                        bound = alias.asname or alias.name.split(".")[0]
                        if bound in params:
                            problems.append(f"{module}.{node.name} imports {bound!r} over its own parameter")
    return problems


def test_no_import_inside_a_function_rebinds_its_parameters():
    problems = shadowing_problems(ROOT / "runner", "runner")
    assert not problems, "\n".join(problems)


def test_the_shadowing_checker_finds_an_import_over_a_parameter(tmp_path):
    package = _fixture_package(tmp_path, {
        "__init__.py": "",
        "low.py": "def keep(report):\n    return report\n",
        "top.py": "def run(keep: bool = False):\n    from .low import keep\n    return keep\n",
    })
    assert shadowing_problems(package, "pkg") == ["pkg.top.run imports 'keep' over its own parameter"]


def test_every_part_has_a_face_that_says_what_it_is_for():
    for init in sorted((ROOT / "runner").glob("*/__init__.py")):
        tree = ast.parse(init.read_text())
        assert ast.get_docstring(tree), f"{init} needs a docstring saying what the part is for"


def test_faces_and_help_import_no_heavy_library():
    """--help and inspect stay fast: importing a part's face loads no Docker SDK, pandas or pyarrow."""
    code = textwrap.dedent("""
        import sys
        import runner.cli.main, runner.inspection, runner.images, runner.sandbox, runner.verdict
        heavy = sorted(m for m in ("docker", "pandas", "pyarrow", "numpy", "numerai_tools") if m in sys.modules)
        print(",".join(heavy))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


def _fixture_package(root: Path, files: dict[str, str]) -> Path:
    for name, body in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body))
    return root / "pkg"


FIXTURE_FLOORS = {"__init__": 1, "low": 1, "high": 2, "top": 3}


def test_the_checker_rejects_a_cycle(tmp_path):
    package = _fixture_package(tmp_path, {
        "__init__.py": "",
        "low.py": "def f():\n    from . import high\n",  # an import inside a function counts
        "high.py": "from .low import f\n",
        "top.py": "from . import high\n",
    })
    problems = layering_problems(package, "pkg", {"__init__": 1, "low": 2, "high": 2, "top": 3})
    assert any(p.startswith("import cycle: pkg.high -> pkg.low") for p in problems), problems


def test_the_checker_rejects_an_upward_import_and_an_unassigned_module(tmp_path):
    package = _fixture_package(tmp_path, {
        "__init__.py": "",
        "low.py": "import pkg.top\n",
        "high.py": "from .low import x\n",
        "top.py": "from .high import y\n",
        "stray/__init__.py": "",
        "stray/inner.py": "from ..low import x\n",
    })
    problems = layering_problems(package, "pkg", FIXTURE_FLOORS, isolated={"pkg.high"})
    assert "pkg.low (floor 1) imports pkg.top (floor 3): upward" in problems, problems
    assert any("pkg.stray.inner has no floor" in p for p in problems), problems
    assert any(p.startswith("pkg.high must import nothing of ours") for p in problems), problems


def test_the_checker_accepts_a_well_layered_package(tmp_path):
    package = _fixture_package(tmp_path, {
        "__init__.py": "",
        "low.py": "import os\n",
        "high.py": "from .low import x\nfrom . import low\n",
        "top.py": "def f():\n    from .high import y\n    import pkg.low\n",
    })
    assert layering_problems(package, "pkg", FIXTURE_FLOORS) == []


def test_the_size_checker_counts_lines_per_part(tmp_path):
    package = _fixture_package(tmp_path, {
        "__init__.py": "",
        "low.py": "x = 1\n" * 4,
        "high.py": "x = 1\n" * 3,
        "top.py": "x = 1\n" * 9,
    })
    problems = size_problems(package, "pkg", most=5, by_part={"high": 2}, exempt={"pkg.top"})
    assert problems == ["pkg.high has 3 lines (at most 2): split it by concern"], problems


def test_an_installed_wheel_runs_help_and_inspect_outside_the_checkout(tmp_path):
    """pip wheel . into a fresh venv elsewhere: the packages and the image definitions ship."""
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    wheel = next(wheels.glob("numerai_sandbox-*.whl"))
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel)], check=True,
                   capture_output=True)
    # The dependencies come from this interpreter's site-packages as a plain path: its .pth files
    # (our own editable install among them) are not processed, so `runner` is the installed wheel.
    site = subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    import sysconfig

    (Path(site) / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    model = tmp_path / "model.pkl"
    import cloudpickle

    def predict(live_features):
        return live_features

    model.write_bytes(cloudpickle.dumps(predict))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    command = venv / "bin" / "numerai-sandbox"
    helped = subprocess.run([str(command), "--help"], capture_output=True, text=True, cwd=outside)
    assert helped.returncode == 0 and "inspect" in helped.stdout, helped.stderr
    inspected = subprocess.run([str(command), "inspect", str(model), "--json"], capture_output=True, text=True,
                               cwd=outside)
    assert inspected.returncode == 0, inspected.stderr
    import json

    report = json.loads(inspected.stdout)
    assert report["callable"]["kind"] == "function"
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import runner, runner.images.pinfiles as p; "
                            "print(runner.__file__); print(p.images_root())"],
                           capture_output=True, text=True, cwd=outside, check=True).stdout.split()
    assert str(ROOT) not in where[0] and where[1].endswith("runner/image_definitions")
    assert (Path(where[1]) / "Dockerfile.env").is_file() and (Path(where[1]) / "Dockerfile.layer").is_file()
    # Numerai's pin lists and the module map ship too: the full and auto profiles work from them offline
    assert (Path(where[1]) / "numerai-distributions.json").is_file()
    assert (Path(where[1]) / "py3.11" / "numerai.txt").is_file()
