"""Run every chapter as a Colab learner does, in a Colab-like environment (``make compat``).

    python tests/colab_sim.py .venv-compat/bin/python [chapters/NN_name.ipynb ...]

The given interpreter's environment stands in for a Colab runtime: it has torch, Triton,
NumPy, ipywidgets and the rest, but not ``sseq``. Then:

1. ``google.colab`` is made importable, and imported by every kernel (as on Colab), so each
   chapter's setup cell takes its Colab branch: ``%pip install "sseq @ git+URL@main"``. Git
   is told to fetch that URL from a clone of this repository's committed HEAD instead of
   GitHub; nothing else in the cell changes.
2. That install runs once up front, exactly as the setup cell words it, and must leave the
   runtime's torch, Triton, NumPy and ipywidgets as they were (on Colab a changed one asks
   for a restart of the runtime) and install ``sseq`` from the clone.
3. nbval runs every chapter top to bottom in such a kernel and compares its outputs with the
   stored ones, with the numerical libraries on another CPU's code paths
   (``tests/other_cpu.py``): another machine, other library versions, the Colab branch of
   the setup cell, and the same stored outputs.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from other_cpu import other_cpu_environment  # noqa: E402
from toc import chapter_notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEPT = ("torch", "triton", "numpy", "ipywidgets")  # Colab's own; the setup cell keeps them
PROBE = ("import importlib.metadata as m, json\n"
         "def v(n):\n"
         "    try: return m.version(n)\n"
         "    except m.PackageNotFoundError: return None\n"
         "def url(n):\n"
         "    try: return json.loads(m.distribution(n).read_text('direct_url.json') or 'null')\n"
         "    except m.PackageNotFoundError: return None\n"
         f"print(json.dumps({{**{{n: v(n) for n in {KEPT!r} + ('sseq',)}}, "
         "'sseq_url': url('sseq')}))")


def installed(python: str) -> dict:
    # from /, not from the repository, whose sseq.egg-info (the editable install) would answer
    out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=True,
                         cwd="/")
    return json.loads(out.stdout)


def setup_install_spec(path: Path) -> str:
    """The requirement that a chapter's setup cell ``%pip install``s on Colab."""
    cell = next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    match = re.search(r'%pip install -q "(.+)"', cell.source)
    if match is None:
        raise SystemExit(f"{path}: the setup cell has no '%pip install -q \"...\"' line")
    return match.group(1)


def colab_environment(python: str, home: Path, clone: Path, repo_url: str) -> dict[str, str]:
    """Environment variables for a Colab-like kernel of ``python`` (a kernelspec in ``home``)."""
    (home / "site" / "google" / "colab").mkdir(parents=True)
    (home / "site" / "google" / "colab" / "__init__.py").write_text('"""Colab, simulated."""\n')
    startup = home / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-colab.py").write_text("import google.colab  # noqa: F401\n")
    spec = home / "jupyter" / "kernels" / "colab-sim"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Colab (simulated)", "language": "python",
        "env": {"PYTHONPATH": str(home / "site"), "IPYTHONDIR": str(home / "ipython")},
    }))
    return {
        "JUPYTER_PATH": str(home / "jupyter"),
        # git fetches the book's repository URL from the clone instead (git config by env)
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"url.file://{clone}.insteadOf",
        "GIT_CONFIG_VALUE_0": repo_url,
        # pip as on Colab: the public index, no notice about pip's own version
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    }


def main(argv: list[str]) -> int:
    python = str(Path(argv[0]).absolute())  # the kernels start in other folders
    paths = [Path(p) for p in argv[1:]] or chapter_notebooks()
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    spec = setup_install_spec(paths[0])
    before = installed(python)
    if before["sseq"] is not None:
        subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", "sseq"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        home, clone = Path(tmp), Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        subprocess.run(["git", "checkout", "-q", "-B", repo["branch"]], cwd=clone, check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True,
                                text=True, check=True).stdout.strip()
        env = {**os.environ, **colab_environment(python, home, clone, repo["url"])}
        print(f"Colab's setup cell, as worded: pip install -q {spec!r}", flush=True)
        subprocess.run([python, "-m", "pip", "install", "-q", spec], env=env, check=True)
        after = installed(python)
        problems = [f"the install changed {n} {before[n]} -> {after[n]} (Colab would restart)"
                    for n in KEPT if before[n] != after[n]]
        got = (after["sseq_url"] or {}).get("vcs_info", {}).get("commit_id")
        if got != commit:
            problems.append(f"sseq was not installed from the clone at {commit} (got {got})")
        for problem in problems:
            print(problem)
        if problems:
            return 1
        print(f"kept {', '.join(f'{n} {before[n]}' for n in KEPT)}; sseq {after['sseq']} "
              f"from {commit[:10]}. Now every chapter through nbval, Colab's branch of the "
              f"setup cell, other CPU code paths:", flush=True)
        env.update(other_cpu_environment(), OMP_NUM_THREADS="1")
        nbval = [sys.executable, "-m", "pytest", "-p", "tests.nbtimes", "-p", "no:cacheprovider",
                 "--nbval", "--nbval-kernel-name", "colab-sim", "--nbval-cell-timeout=600",
                 "--nbval-sanitize-with", "tests/nbval_sanitize.cfg", "-n", "2",
                 "--dist", "loadfile", *map(str, paths)]
        return subprocess.run(nbval, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
