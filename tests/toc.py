"""Print the chapter notebooks listed in _toc.yml, one per line (used by the Makefile)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def chapter_notebooks(root: Path = ROOT) -> list[Path]:
    """Every file of _toc.yml that is a notebook, in reading order."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    found: list[Path] = []

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                path = root / (entry["file"] + ".ipynb")
                if path.exists():
                    found.append(path)
            walk(entry.get("chapters") or entry.get("sections"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    return found


if __name__ == "__main__":
    print("\n".join(str(p.relative_to(ROOT)) for p in chapter_notebooks()))
