"""Print environment variables that put the numerical libraries on other code paths.

    env $(python tests/other_cpu.py) python -m pytest --nbval ...   (make notebooks-other-cpu)

Stored notebook outputs must match on any machine, not only the one that stored them.
Another CPU takes other SIMD kernels in PyTorch, NumPy, OpenBLAS, MKL, oneDNN and numba's
JIT, and their results differ in the last digits. These variables force those other paths
on this machine, so that a number printed at more precision than its claim needs fails here
rather than on a reader's laptop:

- PyTorch's ATen kernels without vectorisation (``ATEN_CPU_CAPABILITY=default``);
- NumPy's dispatched SIMD kernels switched off (every dispatch target this CPU has);
- OpenBLAS (NumPy, SciPy) on another core type's kernels;
- MKL and oneDNN (PyTorch's BLAS and convolutions) limited to an older instruction set;
- numba compiling for a generic x86-64 instead of this CPU.
"""

from __future__ import annotations


def numpy_dispatch_targets() -> list[str]:
    """The SIMD dispatch targets NumPy would use on this CPU (to be disabled)."""
    try:
        from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    except ImportError:  # NumPy < 2
        from numpy.core._multiarray_umath import __cpu_dispatch__, __cpu_features__
    return [name for name in __cpu_dispatch__ if __cpu_features__.get(name)]


def openblas_coretype() -> str:
    """Another OpenBLAS core type than the one it detects here (both run on any x86-64)."""
    import numpy  # noqa: F401  (loads OpenBLAS so that threadpoolctl sees it)
    from threadpoolctl import threadpool_info

    detected = {i.get("architecture", "") for i in threadpool_info() if i["user_api"] == "blas"}
    return "Sandybridge" if "Haswell" in detected else "Haswell"


def other_cpu_environment() -> dict[str, str]:
    return {
        "ATEN_CPU_CAPABILITY": "default",
        "NPY_DISABLE_CPU_FEATURES": " ".join(numpy_dispatch_targets()),
        "OPENBLAS_CORETYPE": openblas_coretype(),
        "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "NUMBA_CPU_NAME": "generic",
    }


if __name__ == "__main__":
    # One VAR=value per word, quoted for the shell where a value holds spaces.
    print(" ".join(f"{k}='{v}'" if " " in v else f"{k}={v}"
                   for k, v in other_cpu_environment().items()))
