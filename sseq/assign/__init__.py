"""Hand out a chapter: the student and instructor editions from the one source.

The committed chapter notebooks are the only source. From them::

    python -m sseq.assign tag chapters/*.ipynb      # tag solution and stub cells (idempotent)
    python -m sseq.assign tag --check               # exit 1 if a chapter's tags are stale
    python -m sseq.assign student   --out _build/student      # make student
    python -m sseq.assign instructor --out _build/instructor  # make instructor
    python -m sseq.assign book-student --out _build/html-student  # make book-student

Without notebooks, every chapter listed in ``_toc.yml`` is used. The student edition has no
solution (no gated Markdown, no solution code), the stubs' outputs are cleared, the rest is
as in the book. The instructor edition keeps the solutions and comes with an answer key per
chapter (``NN_name_answers.md``). ``book-student`` builds the HTML book, ``-W -n``, from the
student edition. This is an instructor's tool: it needs the book's environment
(``requirements.txt``: nbformat, nbconvert, jupyter-book), which a learner does not.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["build_instructor", "build_student", "build_student_book", "tag_notebooks",
           "toc_notebooks"]


def toc_notebooks(root: Path = Path(".")) -> list[Path]:
    """Every notebook listed in ``root/_toc.yml``, in reading order."""
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found: list[Path] = []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry and (root / f"{entry['file']}.ipynb").exists():
                found.append(root / f"{entry['file']}.ipynb")
            walk(entry.get("chapters") or entry.get("sections"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return found


def tag_notebooks(paths: list[Path], *, check: bool = False) -> list[Path]:
    """Tag the cells of each notebook (metadata only); return those that changed.

    With ``check=True`` nothing is written: the return value lists the stale notebooks.
    """
    import nbformat

    from sseq.assign.gates import tag

    changed = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if tag(nb):
            changed.append(path)
            if not check:
                nbformat.write(nb, path)
    return changed


def _read(path: Path):
    import nbformat

    return nbformat.read(path, as_version=4)


def build_student(paths: list[Path], out: Path) -> list[Path]:
    """Write the student edition of each notebook into ``out``."""
    from sseq.assign.editions import student_edition, write

    return [write(student_edition(_read(p), p.stem), out / p.name) for p in paths]


def build_instructor(paths: list[Path], out: Path) -> list[Path]:
    """Write the instructor edition and the answer key of each notebook into ``out``."""
    from sseq.assign.answer_key import answer_key
    from sseq.assign.editions import instructor_edition, write

    written = []
    for path in paths:
        nb = _read(path)
        written.append(write(instructor_edition(nb, path.stem), out / path.name))
        key = out / f"{path.stem}_answers.md"
        key.write_text(answer_key(nb, path.stem))
        written.append(key)
    return written


def student_book_source(root: Path, out: Path) -> Path:
    """A copy of the book's sources in ``out``, every chapter replaced by its student edition."""
    import yaml

    if out.exists():
        shutil.rmtree(out)
    # The whole tree (pages include files from anywhere: requirements.txt, sseq's sources),
    # less environments and build outputs; then the chapters are replaced below.
    shutil.copytree(root, out, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv*", "_build", "__pycache__", ".pytest_cache", ".ruff_cache", "*.egg-info",
        ".ipynb_checkpoints"))
    config = yaml.safe_load((root / "_config.yml").read_text())
    config["title"] = f"{config.get('title', 'The book')} (student edition)"
    config.pop("launch_buttons", None)  # they would open the repository's notebooks, solved
    (out / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    for path in toc_notebooks(root):
        build_student([path], out / path.parent.relative_to(root))
    return out


def build_student_book(root: Path, html: Path, *, work: Path | None = None) -> int:
    """Build the student book with jupyter-book (``-W -n``) into ``html``; the exit code."""
    work = work or root / "_build" / "student-book"
    source = student_book_source(root, work)
    executable = Path(sys.executable).with_name("jupyter-book")
    command = [str(executable) if executable.exists() else "jupyter-book", "build",
               str(source), "-W", "-n", "--keep-going"]
    code = subprocess.run(command, check=False).returncode
    if code == 0:
        if html.exists():
            shutil.rmtree(html)
        shutil.move(str(source / "_build" / "html"), str(html))
    return code
