"""Lay out the installed namespace as a tree of links: ``build/tree/masterplan``.

The design card's folders install as subpackages of ``masterplan`` through a
``package-dir`` mapping. Tools that walk source folders instead of importing
(mypy, import-linter) see the namespace only in this tree, which links each
module and folder to its place in the repository, so errors still name real
files. Run from anywhere; prints the tree's root.
"""

from __future__ import annotations

import os
import shutil
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "tree"


def main() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = config["package-dir"]
    shutil.rmtree(TREE, ignore_errors=True)
    top = TREE / "masterplan"
    top.mkdir(parents=True)
    # The namespace's own folder: link its entries one by one, so that the
    # mapped subpackages can sit beside them.
    for entry in sorted((ROOT / mapping["masterplan"]).iterdir()):
        if entry.name != "__pycache__":
            os.symlink(entry, top / entry.name)
    for package, folder in sorted(mapping.items()):
        if package != "masterplan":
            os.symlink(ROOT / folder, TREE.joinpath(*package.split(".")))
    print(TREE)


if __name__ == "__main__":
    main()
