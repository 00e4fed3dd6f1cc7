"""The package's shape, checked from the source: layers import downwards only, the nn core
imports nothing of the rest, no import cycle, no module over 350 lines, a thin CLI."""

import ast
from pathlib import Path

import pytest

import aae_np

ROOT = Path(aae_np.__file__).parent
# what each package may import from aae_np (besides itself); see docs/architecture.md
ALLOWED = {
    "nn": set(),
    "fast": {"nn"},
    "models": {"nn", "fast", "files"},
    "train": {"nn", "fast", "models", "files", "eval"},
    "eval": {"nn", "fast", "models", "files", "data"},
    "teach": {"nn", "fast", "models", "files", "data",      # the gradebook: its CSV, the capstone's test images
              "train", "eval"},                            # Exercise 13's broken runs: trained, then drawn
}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(ROOT.parent).with_suffix("").parts): p for p in ROOT.rglob("*.py")}


def imports_of(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("aae_np"):
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.startswith("aae_np"))
    known = modules()
    return {m for m in out if m in known and m != "aae_np"}


def test_each_package_imports_only_the_layers_below_it():
    for name, path in modules().items():
        parts = name.split(".")
        if len(parts) < 3 or parts[1] not in ALLOWED:
            continue
        for target in imports_of(path):
            package = target.split(".")[1]
            assert package == parts[1] or package in ALLOWED[parts[1]], f"{name} imports {target}"


def test_no_import_cycle():
    graph = {name: {t for t in imports_of(path) if not t.endswith("__init__")} for name, path in modules().items()}
    state: dict[str, int] = {}

    def visit(node, trail):
        if state.get(node) == 1:
            pytest.fail("import cycle: " + " -> ".join(trail[trail.index(node):] + [node]))
        if state.get(node) == 2:
            return
        state[node] = 1
        for nxt in graph.get(node, ()):
            visit(nxt, trail + [node])
        state[node] = 2

    for node in graph:
        visit(node, [])


def test_modules_are_short_and_the_cli_is_thin():
    for name, path in modules().items():
        lines = len(path.read_text().splitlines())
        assert lines <= 350, f"{name}: {lines} lines"
    assert len((ROOT / "cli.py").read_text().splitlines()) <= 250


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "layers.py"
    bad.write_text("from aae_np.models.aae import AAE\nimport aae_np.train.trainer\n")
    assert imports_of(bad) == {"aae_np.models.aae", "aae_np.train.trainer"}


def test_the_public_api_names_exist():
    for name in aae_np.__all__:
        assert getattr(aae_np, name) is not None
    with pytest.raises(AttributeError):
        aae_np.not_a_name


def test_starting_the_cli_and_training_import_no_plotting_library():
    """matplotlib costs ~0.3 s and 30 MiB at start-up; only drawing a figure may import it."""
    import subprocess
    import sys

    code = ("import sys; from aae_np.cli import COMMANDS; from aae_np.cli_args import build_parser; "
            "build_parser(COMMANDS); "
            "import aae_np.train.run, aae_np.train.variant, aae_np.eval.held_out; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
