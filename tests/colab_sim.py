"""Run every chapter the way a Colab learner does, in a Colab-like environment (``make compat``).

    python tests/colab_sim.py .venv-compat/bin/python [chapters/NN_name.ipynb ...]

The given interpreter's environment stands in for a Colab runtime: it has torch, Triton,
NumPy, ipywidgets and the rest, but not ``sseq``. Each chapter runs top to bottom in a
fresh kernel of that environment, with ``google.colab`` importable and imported (as it is
on Colab), so the setup cell takes its Colab branch: ``%pip install "sseq @ git+URL@main"``,
with the URL pointed at a clone of this repository's committed HEAD. The run fails if a
cell raises, if ``sseq`` does not come from that clone, or if the install changed the
version of torch, Triton, NumPy or ipywidgets (which on Colab would ask for a restart).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from toc import chapter_notebooks  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
KEPT = ("torch", "triton", "numpy", "ipywidgets")  # Colab's own; the setup cell keeps them
PROBE = ("import importlib.metadata as m, json\n"
         "def v(n):\n"
         "    try: return m.version(n)\n"
         "    except m.PackageNotFoundError: return None\n"
         f"print(json.dumps({{n: v(n) for n in {KEPT!r} + ('sseq',)}}))")


def versions(python: str) -> dict[str, str | None]:
    out = subprocess.run([python, "-c", PROBE], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def colab_kernel(python: str, home: Path) -> str:
    """A kernelspec for ``python`` whose IPython imports a stand-in ``google.colab`` first."""
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
        "env": {"PYTHONPATH": str(home / "site"), "IPYTHONDIR": str(home / "ipython"),
                "MPLBACKEND": "Agg", "OMP_NUM_THREADS": "1"},
    }))
    return str(home / "jupyter")


def run_chapter(path: Path, url: str, clone_url: str, workdir: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    setup = nb.cells[next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")]
    if url not in setup.source:
        raise SystemExit(f"{path}: the setup cell does not install from {url}")
    setup.source = setup.source.replace(url, clone_url)
    client = NotebookClient(nb, timeout=600, kernel_name="colab-sim",
                            resources={"metadata": {"path": str(workdir)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    return time.perf_counter() - start


def main(argv: list[str]) -> int:
    python = str(Path(argv[0]).absolute())  # the kernel starts in another folder
    paths = [Path(p) for p in argv[1:]] or chapter_notebooks()
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    url = f"git+{repo['url']}@{repo['branch']}"
    before = versions(python)
    if before["sseq"] is not None:
        subprocess.run([python, "-m", "pip", "uninstall", "-q", "-y", "sseq"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        clone = home / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=clone, capture_output=True,
                                text=True, check=True).stdout.strip()
        os.environ["JUPYTER_PATH"] = colab_kernel(python, home)
        (home / "work").mkdir()
        for path in paths:
            seconds = run_chapter(path, url, f"git+file://{clone}@{commit}", home / "work")
            print(f"{seconds:7.1f} s  {path}  (Colab simulated: no error)", flush=True)
    after = versions(python)
    changed = [f"{n} {before[n]} -> {after[n]}" for n in KEPT if before[n] != after[n]]
    if changed:
        print(f"the setup cell changed Colab's own packages: {', '.join(changed)}")
        return 1
    if after["sseq"] is None:
        print("sseq was not installed by the setup cell")
        return 1
    print(f"Colab's packages kept: {', '.join(f'{n} {before[n]}' for n in KEPT)}; "
          f"sseq {after['sseq']} installed from the clone at {commit[:10]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
