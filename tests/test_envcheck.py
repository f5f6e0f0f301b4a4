"""The Makefile's environment check (tests/envcheck.py) sees a broken or outdated .venv."""

from __future__ import annotations

import sys
from importlib import metadata

import pytest

from tests import envcheck


def pinned(tmp_path, *lines):
    path = tmp_path / "requirements.txt"
    path.write_text("\n".join(["# a comment", *lines]) + "\n")
    return path


def test_an_environment_that_holds_every_pin_passes(tmp_path):
    reqs = pinned(tmp_path, f"numpy=={metadata.version('numpy')}",
                  f"PyYAML=={metadata.version('pyyaml')}", "-e .")
    assert envcheck.check_pins(reqs) == []


def test_torch_local_build_matches_its_public_pin(tmp_path):
    public = metadata.version("torch").split("+")[0]
    assert envcheck.check_pins(pinned(tmp_path, f"torch=={public}")) == []


@pytest.mark.parametrize(("line", "message"), [
    ("numpy==0.0.1", "numpy==0.0.1 is pinned but"),
    ("no-such-package-xyz==1.0", "no-such-package-xyz==1.0 is pinned but not installed"),
])
def test_a_missing_or_changed_package_is_named(tmp_path, line, message):
    problems = envcheck.check_pins(pinned(tmp_path, line))
    assert len(problems) == 1 and message in problems[0]


def test_python_versions_outside_the_pins_are_refused(monkeypatch):
    assert envcheck.check_python() == []  # the interpreter running the tests is supported
    for version in ((3, 10, 13), (3, 11, 4), (3, 14, 0)):
        monkeypatch.setattr(sys, "version_info", version)
        problem, = envcheck.check_python()
        assert "needs Python 3.11.5 to 3.13" in problem and ".".join(map(str, version)) in problem
