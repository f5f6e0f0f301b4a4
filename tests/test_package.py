"""The package itself: importing is silent and cheap, the version is single-sourced, seeds work."""

from __future__ import annotations

import subprocess
import sys
import tomllib

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
