"""Print requirements.txt for the current environment (``make freeze``).

Pins every installed distribution exactly, except torch, which stays at the CPU
build's public version (``torch==2.13.0``: pip finds the CPU wheel on this machine;
``+cpu`` would not resolve elsewhere), and installs sseq itself in editable mode.
"""

from __future__ import annotations

import subprocess
import sys

HEADER = """\
# The exact environment that builds and tests the book on the project's machine (Python 3.11,
# CPU). torch is pinned to the CPU build that lies on disk: a looser pin pulls a multi-GB CUDA
# build. sseq's own (loose) dependencies are in pyproject.toml. Regenerate with 'make freeze'."""


def main() -> None:
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    pins = [line.split("+")[0] if line.startswith("torch==") else line
            for line in frozen if not line.startswith("sseq")]
    print("\n".join([HEADER, *pins, "-e ."]))


if __name__ == "__main__":
    main()
