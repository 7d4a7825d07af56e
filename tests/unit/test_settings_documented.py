"""Every environment variable Hubcast reads is read in app/settings.py, and the README's Configuration table
lists exactly those: a variable added on one side only fails here.

The reads are found in the source (not by calling the code): `os.environ.get("X")`, `os.environ["X"]`,
`os.getenv("X")`, and `env_with_prefix(PREFIX)` for the families configured one variable per field
(README: `PREFIX<FIELD>`). An argument may be a module constant holding the name.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from app.settings import PROJECT_ROOT

SETTINGS = PROJECT_ROOT / "app" / "settings.py"
README = PROJECT_ROOT / "README.md"


def _constants(tree: ast.Module) -> dict[str, str]:
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    out[target.id] = node.value.value
    return out


def _is_environ(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "environ"
        and isinstance(node.value, ast.Name)
        and node.value.id == "os"
    )


def variables_read(path: Path) -> set[str]:
    """Names read from the environment in `path` (a prefix family as "PREFIX<FIELD>")."""
    tree = ast.parse(path.read_text())
    constants = _constants(tree)

    def name_of(arg: ast.AST) -> str | None:
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        if isinstance(arg, ast.Name):
            return constants.get(arg.id)
        return None

    found: set[str] = set()
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            environ_get = isinstance(func, ast.Attribute) and func.attr == "get" and _is_environ(func.value)
            if environ_get or (isinstance(func, ast.Attribute) and func.attr == "getenv"):
                name = name_of(node.args[0])
            elif isinstance(func, ast.Name) and func.id == "env_with_prefix":
                prefix = name_of(node.args[0])
                name = None if prefix is None else prefix + "<FIELD>"
            if name is not None:
                found.add(name)
        elif isinstance(node, ast.Subscript) and _is_environ(node.value):
            name = name_of(node.slice)
            if name is not None:
                found.add(name)
    # env_with_prefix's callers elsewhere pass these constants: every *_ENV_PREFIX is a family read here.
    found |= {value + "<FIELD>" for key, value in constants.items() if key.endswith("_ENV_PREFIX")}
    found.discard("<FIELD>")  # env_with_prefix's own parameter, not a variable
    return found


def readme_variables(text: str, families: set[str] = frozenset()) -> set[str]:
    """The variables in the first column of the README's Configuration table. `A` / `B` lists two; in a
    family (`families`: prefixes such as "HUBCAST_RESTART_"), `HUBCAST_RESTART_MAX_CRASHES` / `_WINDOW_S`
    abbreviates the second name."""
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        if not line.startswith("|") or line.startswith("|---"):
            continue
        previous = ""
        for token in re.findall(r"`([^`]+)`", line.split("|")[1]):
            token = re.sub(r"<[A-Z_]+>$", "<FIELD>", token.strip())
            if token.startswith("_"):
                stem = next((f for f in families if previous.startswith(f)), None)
                token = stem.rstrip("_") + token if stem else token
            names.add(token)
            previous = token
    return names


def _families(names: set[str]) -> set[str]:
    return {n.removesuffix("<FIELD>") for n in names if n.endswith("<FIELD>")}


def test_every_variable_read_is_in_the_readme_table_and_back():
    read = variables_read(SETTINGS)
    families = _families(read)
    documented = readme_variables(README.read_text(), families)
    assert read, "no environment read found in app/settings.py: has the way it reads them changed?"
    # A family read one variable per field may be documented as `PREFIX<FIELD>` or name by name.
    missing = {
        n
        for n in read - documented
        if not (n.endswith("<FIELD>") and any(d.startswith(n.removesuffix("<FIELD>")) for d in documented))
    }
    assert sorted(missing) == [], "read in app/settings.py but missing from README's Configuration table"
    unknown = {n for n in documented - read if not any(n.startswith(f) for f in families)}
    assert sorted(unknown) == [], "in README's Configuration table but not read in app/settings.py"


def test_the_scan_sees_each_kind_of_read(tmp_path):
    source = tmp_path / "s.py"
    source.write_text(
        'import os\nNAME = "C_VAR"\nP_ENV_PREFIX = "P_"\n'
        'a = os.environ.get("A_VAR", "")\nb = os.environ["B_VAR"]\nc = os.getenv(NAME)\n'
        "d = env_with_prefix(P_ENV_PREFIX)\n"
    )
    assert variables_read(source) == {"A_VAR", "B_VAR", "C_VAR", "P_<FIELD>"}
    table = (
        "## Configuration\n\n| variable | default |\n|---|---|\n| `A_VAR` / `B_VAR` | x |\n"
        "| `P_<OPTION>` | `not_a_name` |\n| `Q_ONE_X` / `_TWO` | |\n\n## Next\n| `Z` | |\n"
    )
    assert readme_variables(table, {"Q_"}) == {"A_VAR", "B_VAR", "P_<FIELD>", "Q_ONE_X", "Q_TWO"}
