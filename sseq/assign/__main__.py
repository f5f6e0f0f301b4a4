"""Command line of :mod:`sseq.assign`: tag, student, instructor, book-student."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sseq.assign import (
    build_instructor,
    build_student,
    build_student_book,
    tag_notebooks,
    toc_notebooks,
)
from sseq.assign.editions import UntaggedError

DEFAULT_OUT = {"student": "_build/student", "instructor": "_build/instructor",
               "book-student": "_build/html-student"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sseq.assign",
                                     description="Student and instructor editions of the book.")
    parser.add_argument("command", choices=["tag", "student", "instructor", "book-student"])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        help="chapter notebooks (default: every chapter in _toc.yml)")
    parser.add_argument("--out", type=Path, help="output folder")
    parser.add_argument("--root", type=Path, default=Path("."), help="the book's root folder")
    parser.add_argument("--check", action="store_true",
                        help="tag: write nothing, exit 1 if any notebook's tags are stale")
    args = parser.parse_intermixed_args(argv)
    paths = args.notebooks or toc_notebooks(args.root)
    out = args.out or args.root / DEFAULT_OUT.get(args.command, ".")
    try:
        if args.command == "tag":
            stale = tag_notebooks(paths, check=args.check)
            verb = "stale (run: python -m sseq.assign tag)" if args.check else "tagged"
            for path in stale:
                print(f"{verb}: {path}")
            return 1 if args.check and stale else 0
        if args.command == "book-student":
            code = build_student_book(args.root, out)
            print(f"The student book is in {out / 'index.html'}" if code == 0 else
                  "The student book did not build (see the warnings above).")
            return code
        build = build_student if args.command == "student" else build_instructor
        for path in build(paths, out):
            print(path)
        return 0
    except UntaggedError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
