"""Prove that the book's dependencies resolve where the book says they do (``make deps``).

Each check is a real pip resolver run against the public index (``--isolated`` ignores this
machine's pip configuration and local wheels; ``--dry-run`` reads metadata, installs nothing),
for a Python version and platform that need not be the one running it:

- ``requirements.txt`` (the pinned environment) for every Python version the README names,
  torch's own requirements (its Triton pin among them) included;
- ``sseq`` alone with its ``gpu`` extra (what Colab's setup cell installs) for the oldest
  and newest supported Python, as binary wheels only.

Then, where a Python 3.13 interpreter exists on this machine, every module of ``sseq`` and
``tests`` is byte-compiled by it and checked for imports of modules that 3.13 removed.
The runs go in parallel (they wait on the network); the output is one line per check.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PINNED_PYTHONS = ("3.11.5", "3.12", "3.13")  # the README's promise for `make`
# (3.11.5, not 3.11.0: soupsieve 4.x, pinned by the book build, needs 3.11.5.)
SSEQ_PYTHONS = ("3.10", "3.13")  # pyproject's requires-python, oldest and Colab's
# Binary wheels for x86-64 Linux, whichever manylinux level a project publishes.
PLATFORMS = ["linux_x86_64", "any", "manylinux1_x86_64", "manylinux2010_x86_64",
             "manylinux2014_x86_64", *(f"manylinux_2_{n}_x86_64" for n in range(5, 40))]
# PEP 594 and friends: standard modules that Python 3.13 no longer has.
REMOVED_IN_313 = {"aifc", "audioop", "cgi", "cgitb", "chunk", "crypt", "imghdr", "lib2to3",
                  "mailcap", "msilib", "nis", "nntplib", "ossaudiodev", "pipes", "sndhdr",
                  "spwd", "sunau", "telnetlib", "uu", "xdrlib"}


def resolve(python: str, requirement: list[str]) -> tuple[str, bool, str]:
    """Run pip's resolver for ``python`` on Linux x86-64; return (label, ok, last line)."""
    with tempfile.TemporaryDirectory() as target:
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--isolated",
               "--use-feature=fast-deps",  # metadata by HTTP range requests, not whole wheels
               "--ignore-installed", "--only-binary=:all:",
               "--disable-pip-version-check", "--implementation", "cp",
               "--python-version", python, "--target", target,
               *(f"--platform={p}" for p in PLATFORMS), *requirement]
        run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    lines = (run.stdout + run.stderr).strip().splitlines() or ["(no output)"]
    would = next((line for line in lines if line.startswith("Would install")), None)
    ok = run.returncode == 0 and would is not None
    detail = next((line for line in lines if line.startswith("ERROR")), lines[-1])
    if ok:
        detail = f"{len(would.split()) - 2} distributions"
    return f"{' '.join(requirement)} on CPython {python}", ok, detail[:300]


def removed_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & REMOVED_IN_313


def _python313() -> str | None:
    """A working Python 3.13 interpreter on this machine (pyenv's, or on PATH), if any."""
    candidates = [*map(str, Path.home().glob(".pyenv/versions/3.13*/bin/python3.13")),
                  shutil.which("python3.13")]
    for candidate in filter(None, candidates):
        run = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2])"],
                             capture_output=True, text=True)
        if run.returncode == 0 and run.stdout.strip() == "(3, 13)":
            return candidate
    return None


def check_python_313() -> tuple[str, bool, str]:
    label = "sseq and tests under Python 3.13 (compile, no removed modules)"
    files = sorted([*ROOT.glob("sseq/**/*.py"), *ROOT.glob("tests/**/*.py")])
    used = {str(p.relative_to(ROOT)): removed_imports(p) for p in files}
    bad = {p: sorted(m) for p, m in used.items() if m}
    if bad:
        return label, False, f"imports removed in 3.13: {bad}"
    python313 = _python313()
    if python313 is None:
        return label, True, f"{len(files)} files scanned; no 3.13 interpreter here to compile"
    with tempfile.TemporaryDirectory() as cache:
        run = subprocess.run([python313, "-m", "compileall", "-q", *map(str, files)],
                             capture_output=True, text=True, env={"PYTHONPYCACHEPREFIX": cache})
    return label, run.returncode == 0, (run.stdout + run.stderr).strip()[-300:] or (
        f"{len(files)} files compiled by {python313}")


def main() -> int:
    jobs = [(p, ["-r", "requirements.txt"]) for p in PINNED_PYTHONS]
    jobs += [(p, [".[gpu]"]) for p in SSEQ_PYTHONS]
    with ThreadPoolExecutor(max_workers=len(jobs) + 1) as pool:
        futures = [pool.submit(resolve, p, r) for p, r in jobs]
        futures.append(pool.submit(check_python_313))
        results = [f.result() for f in futures]
    for label, ok, detail in results:
        print(f"{'ok  ' if ok else 'FAIL'}  {label}: {detail}")
    return 0 if all(ok for _, ok, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
