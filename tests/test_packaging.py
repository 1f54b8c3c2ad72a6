"""setup.py lists its packages by hand: every package folder of the source must be in it, or a
non-editable install (a wheel, `pip install .`) silently leaves it out."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def listed_packages():
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "packages":
            return set(ast.literal_eval(node.value))
    raise AssertionError("setup.py has no packages= argument")


def source_packages():
    found = set()
    for folder, prefix in ((ROOT / "aecore", "aecore"), (ROOT / "kernels", "aecore.kernels")):
        for init in folder.rglob("__init__.py"):
            relative = init.parent.relative_to(folder).parts
            if "__pycache__" not in relative:
                found.add(".".join((prefix,) + relative))
    return found


def test_every_package_folder_is_listed_in_setup_py():
    missing = source_packages() - listed_packages()
    assert not missing, f"add to setup.py's packages: {sorted(missing)}"


def test_setup_py_lists_no_package_that_does_not_exist():
    assert not listed_packages() - source_packages()
