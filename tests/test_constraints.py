"""constraints.txt pins every package of an install, and only packages (`.ci/lock` writes it)."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import PROJECT

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;@]+)$")


def pins() -> dict[str, str]:
    out = {}
    for line in (PROJECT / "constraints.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = PIN.match(line.strip())
        assert m, f"not a plain pin (a URL or path would tie installs to one machine): {line!r}"
        out[canonicalize_name(m.group(1))] = m.group(2)
    return out


def test_every_dependency_and_extra_is_pinned_and_satisfies_pyproject():
    project = tomllib.loads((PROJECT / "pyproject.toml").read_text())["project"]
    pinned = pins()
    assert "docent" not in pinned
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    for text in requirements:
        req = Requirement(text)
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is not in constraints.txt: re-run .ci/lock"
        assert req.specifier.contains(pinned[name], prereleases=True), f"{req} vs pinned {pinned[name]}"
