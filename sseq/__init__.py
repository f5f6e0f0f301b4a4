"""sseq — the teaching package of *How Networks Remember*.

Every chapter of the book imports ``sseq`` and displays its real source, so the
code here is written to be read: one concept per module, small to big, the
equation in the docstring above the function that implements it.

Shape glossary
--------------
All tensors are batch-first, ``(batch, length, channels)``. Docstrings name
dimensions with these letters:

======  ==============================  =====================================
letter  meaning                         paper symbol
======  ==============================  =====================================
``b``   batch size                      B (Mamba), batch
``l``   sequence length                 L (SSMs), n (attention)
``d``   channels / model width          D (Mamba's inner width), d_model
``n``   state size per channel          N
``m``   input channels of an SSM        M (multi-input B)
``h``   attention heads                 h
``k``   lag / kernel index              k in K_k = C A_bar^k B_bar
``t``   time step                       t in h_t, x_t
======  ==============================  =====================================

Math names are used for math (``A``, ``B``, ``C``, ``D``, ``dt``, ``A_bar``),
descriptive names for engineering (``d_model``, ``d_state``, ``expand``).

Modules
-------
Submodules are imported on first use (``sseq.scan``, ``sseq.viz``, ...), so
``import sseq`` is cheap, prints nothing and downloads nothing.
"""

from __future__ import annotations

import importlib
import os
import random
import sys

__version__ = "0.1.0"

__all__ = ["__version__", "device", "seed_everything"]

# Modules of the package, loaded lazily on attribute access (PEP 562).
_SUBMODULES = (
    "assign",
    "attention",
    "bench",
    "book",
    "checks",
    "discretize",
    "exercises",
    "experiments",
    "grade",
    "gradients",
    "hippo",
    "lm",
    "mamba",
    "memory",
    "mixers",
    "nn",
    "scan",
    "selective",
    "ssd",
    "ssm",
    "step_size",
    "tasks",
    "traffic",
    "train",
    "viz",
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'sseq' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBMODULES))


def device():
    """The device the book computes on: CUDA when available, else the CPU.

    Returns:
        ``torch.device("cuda")`` or ``torch.device("cpu")``.
    """
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def seed_everything(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch, and ask PyTorch for deterministic kernels.

    Every chapter calls ``seed_everything(0)`` in its setup cell, so that running
    a notebook twice on the same machine gives the same text outputs.

    Args:
        seed: a non-negative integer (Python or NumPy).
    """
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int, got {type(seed).__name__} ({seed!r})")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    seed = int(seed)  # random.seed refuses NumPy integers
    import numpy as np
    import torch

    if not torch.cuda.is_available() and "triton" not in sys.modules:
        # use_deterministic_algorithms below imports Triton (via torch._dynamo), and Triton's
        # own library functions (tl.sum, tl.cdiv, ...) are made interpreted or compiled when
        # Triton is imported: without CUDA, sseq's Triton kernels need its CPU interpreter.
        # No GPU run is affected.
        os.environ.setdefault("TRITON_INTERPRET", "1")
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (legacy global state that learners' code may use)
    torch.manual_seed(seed)
    # Deterministic algorithms where PyTorch has them; warn (not fail) where not.
    torch.use_deterministic_algorithms(True, warn_only=True)
