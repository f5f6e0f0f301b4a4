"""The package itself: importing is silent and cheap, the version is single-sourced, seeds work."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import sseq
from tests.conftest import ROOT


def test_import_prints_nothing_and_loads_no_heavy_module():
    code = ("import sys, sseq; "
            "print(sorted(m for m in ('torch', 'triton', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout == "[]\n"
    assert out.stderr == ""


def test_version_matches_pyproject():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert sseq.__version__ == meta["project"]["version"]


def test_runtime_dependencies_are_loose():
    """A Colab runtime keeps its own torch: sseq must not pin exact versions."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert not [d for d in deps if "==" in d], deps


def test_requirements_pin_torch_exactly():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert "torch==2.13.0" in lines


def test_submodules_load_lazily_and_unknown_names_fail():
    assert sseq.exercises.__name__ == "sseq.exercises"
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        sseq.nonexistent  # noqa: B018


def test_device_is_cuda_only_when_available():
    assert sseq.device().type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_seed_everything_makes_runs_repeat():
    sseq.seed_everything(123)
    a = torch.randn(5)
    sseq.seed_everything(123)
    assert torch.equal(a, torch.randn(5))


def test_seed_everything_seeds_each_generator_with_its_argument():
    """Protects: the seed given reaches Python's, NumPy's and PyTorch's generators.

    Each library seeded directly with the same seed is the oracle, and two different seeds
    give different draws: a version that ignores its argument, or seeds one library with a
    constant, fails here (the same seed twice cannot show it).
    """
    import random

    draws = {}
    for seed in (1, 2):
        sseq.seed_everything(seed)
        got = (random.random(), np.random.random(), torch.rand(1).item())  # noqa: NPY002
        random.seed(seed)
        np.random.seed(seed)  # noqa: NPY002
        torch.manual_seed(seed)
        assert got == (random.random(), np.random.random(), torch.rand(1).item())  # noqa: NPY002
        draws[seed] = got
    assert all(a != b for a, b in zip(draws[1], draws[2], strict=True))


def test_seed_everything_accepts_numpy_integers():
    sseq.seed_everything(np.int64(123))
    a = torch.randn(5)
    sseq.seed_everything(123)
    assert torch.equal(a, torch.randn(5))


@pytest.mark.parametrize(("seed", "error", "message"), [
    (-1, ValueError, "seed must be >= 0, got -1"),
    (1.5, TypeError, "seed must be an int, got float"),
    (True, TypeError, "seed must be an int, got bool"),
])
def test_seed_everything_rejects_bad_seeds(seed, error, message):
    with pytest.raises(error, match=message):
        sseq.seed_everything(seed)


def _sseq_imports() -> dict[str, set[str]]:
    """For each module of sseq, the sseq modules it imports, at the top or inside functions.

    ``from sseq.scan import cpu`` counts as importing ``sseq.scan.cpu`` (a submodule), and
    ``from sseq.scan import selective_scan`` as importing ``sseq.scan``.
    """
    import ast

    root = Path(sseq.__file__).parent
    modules = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {}
    for name, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name.startswith("sseq")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sseq"):
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    edges.add(sub if sub in modules else node.module)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def test_sseq_has_no_import_cycles():
    """Imports run one way, from the chapter-level modules down to the primitives: no two
    modules import each other, directly or through others (house style)."""
    graph = _sseq_imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name, path):
        state[name] = 1
        for dep in sorted(graph[name]):
            if state.get(dep) == 1:
                cycle = path[path.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if dep not in state:
                visit(dep, path + [dep])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert "sseq.scan.triton_kernel_v1" in graph["sseq.scan.triton_kernel"]  # sanity: seen


# --- what the mutation tests found untested (make mutants) ------------------------------------


def test_submodules_load_on_first_use_and_unknown_names_fail():
    """Protects the lazy loading (PEP 562): each name of _SUBMODULES is its module, dir()
    lists them beside the functions, sorted, and an unknown name raises AttributeError."""
    import importlib

    for name in sseq._SUBMODULES:
        assert getattr(sseq, name) is importlib.import_module(f"sseq.{name}")
    listed = dir(sseq)
    assert listed == sorted(listed)
    assert {"scan", "viz", "seed_everything", "device", "__version__"} <= set(listed)
    with pytest.raises(AttributeError, match="^module 'sseq' has no attribute 'scann'$"):
        sseq.scann  # noqa: B018


def test_seed_everything_sets_the_hash_seed_and_deterministic_kernels(monkeypatch):
    """Protects the rest of seed_everything's contract: PYTHONHASHSEED for child processes,
    PyTorch's deterministic algorithms on (warning, not failing, where it has none), and
    without CUDA, Triton's interpreter chosen before anything imports Triton (in a fresh
    process, where Triton is not imported yet)."""
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    before = torch.are_deterministic_algorithms_enabled()
    try:
        torch.use_deterministic_algorithms(False)
        sseq.seed_everything(5)
        assert os.environ["PYTHONHASHSEED"] == "5"
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(before, warn_only=True)
    code = ("import os, sseq; os.environ.pop('TRITON_INTERPRET', None); sseq.seed_everything(0); "
            "print(os.environ.get('TRITON_INTERPRET'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.strip()
    assert out == ("None" if torch.cuda.is_available() else "1")


def test_a_submodule_loads_on_first_access(monkeypatch):
    """Protects __getattr__'s import: a submodule that is not loaded yet is imported when first
    asked for (here sseq.tasks, unloaded for the test and restored after it)."""
    import importlib

    monkeypatch.delattr(sseq, "tasks", raising=False)
    monkeypatch.delitem(sys.modules, "sseq.tasks", raising=False)
    tasks = sseq.tasks
    assert tasks is sys.modules["sseq.tasks"] and tasks.BLANK == 0
    assert tasks is importlib.import_module("sseq.tasks")


def test_device_is_cuda_exactly_when_cuda_is_available(monkeypatch):
    """Protects sseq.device(): CUDA when PyTorch sees a GPU, else the CPU."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert sseq.device() == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert sseq.device() == torch.device("cpu")


def test_seed_everything_defaults_to_zero_and_leaves_an_imported_triton_alone(monkeypatch):
    """Protects the default seed, 0, and the Triton switch: once Triton is imported, choosing
    its interpreter would come too late, so seed_everything leaves TRITON_INTERPRET unset."""
    pytest.importorskip("triton")
    sseq.seed_everything()
    a = torch.rand(3)
    sseq.seed_everything(0)
    assert torch.equal(a, torch.rand(3))
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    sseq.seed_everything(0)
    assert "TRITON_INTERPRET" not in os.environ
