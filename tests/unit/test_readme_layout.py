"""The README's Layout section is the map a new maintainer reads first: it must match the tree."""

from __future__ import annotations

import re

from app.settings import PROJECT_ROOT

README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
LAYOUT = README.split("## Layout", 1)[1].split("```", 2)[1]


def _paths() -> list[str]:
    paths = []
    for line in LAYOUT.splitlines():
        first = line.split("  ", 1)[0].strip()
        if not first or line.startswith(" "):
            continue
        paths += [p.strip() for p in first.split(",")]
    return paths


def test_every_path_the_layout_names_exists():
    missing = [p for p in _paths() if not (PROJECT_ROOT / p).exists()]
    assert _paths() and not missing, f"README Layout names paths that do not exist: {missing}"


def test_every_service_module_is_named_in_the_layout():
    services = PROJECT_ROOT / "app" / "services"
    words = set(re.findall(r"[a-z_]+", LAYOUT))
    unnamed = [
        str(p.relative_to(services))
        for p in services.rglob("*.py")
        if p.name != "__init__.py" and p.stem not in words and "__pycache__" not in p.parts
    ]
    assert not unnamed, f"service modules missing from the README Layout: {unnamed}"
    subsystems = sorted(d.name for d in services.iterdir() if d.is_dir() and d.name != "__pycache__")
    assert all(f"{name}/" in LAYOUT for name in subsystems), subsystems
