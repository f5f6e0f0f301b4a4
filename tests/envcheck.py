"""Check the book's environment before ``make`` uses it (run by the Makefile).

    python tests/envcheck.py python                  # is this Python one the pins support?
    python tests/envcheck.py pins requirements.txt   # does .venv still hold every pin?

``pins`` exits 1 and names what is missing or different (a package deleted or upgraded by
hand, an install that was interrupted), so that the Makefile can rebuild the environment
instead of failing later with an obscure import error.
"""

from __future__ import annotations

import re
import sys
from importlib import metadata
from pathlib import Path

# requirements.txt resolves for these (make deps checks it against the public index);
# soupsieve 4.x, which the book build pins, needs 3.11.5.
OLDEST, NEWEST = (3, 11, 5), (3, 13)

_PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s;#]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def check_python() -> list[str]:
    if OLDEST <= sys.version_info[:3] and sys.version_info[:2] <= NEWEST:
        return []
    have = ".".join(map(str, sys.version_info[:3]))
    return [f"the pinned environment needs Python 3.11.5 to 3.13; {sys.executable} is {have}. "
            f"Run make with PYTHON=python3.12 (or another of those)."]


def check_pins(requirements: Path) -> list[str]:
    installed = {_canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    problems = []
    for line in requirements.read_text().splitlines():
        line = line.strip()
        if line == "-e .":
            if "sseq" not in installed:
                problems.append("sseq is not installed in the environment (the '-e .' line)")
            continue
        match = _PIN.match(line)
        if not match:
            continue
        name, version = _canonical(match.group(1)), match.group(2)
        have = installed.get(name)
        if have is None:
            problems.append(f"{name}=={version} is pinned but not installed")
        elif have.split("+")[0] != version:  # torch's local CPU build is 2.13.0+cpu
            problems.append(f"{name}=={version} is pinned but {have} is installed")
    return problems


def main(argv: list[str]) -> int:
    if argv[:1] == ["python"]:
        problems = check_python()
    elif argv[:1] == ["pins"] and len(argv) == 2:
        problems = check_pins(Path(argv[1]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"envcheck: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
