"""The repository's Python files a module runs: itself and what it imports, transitively.

Read from the files' syntax trees, not by importing them, so that a module may be walked
without loading what it imports (a bento's service reads its settings when imported).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LIBRARY_PACKAGE = "stackport"


def local_sources(
    entry_modules: Iterable[str],
    packages: Iterable[str] = (LIBRARY_PACKAGE,),
    root: Path = REPO_ROOT,
) -> list[Path]:
    """The files of `entry_modules` and of the modules of `packages` they import, transitively.

    Args:
        entry_modules: Dotted module names to start from (any top-level package of `root`).
        packages: The top-level packages whose imports are followed.
        root: The directory the packages are in.

    Returns:
        Paths relative to `root`, sorted, with each package's `__init__.py`.
    """
    followed = set(packages)
    found: set[Path] = set()
    pending = list(entry_modules)
    while pending:
        module = pending.pop()
        parts = module.split(".")
        candidates = [Path(*parts).with_suffix(".py"), Path(*parts, "__init__.py")]
        path = next((c for c in candidates if (root / c).is_file()), None)
        if path is None or path in found:
            continue
        found.add(path)
        found.update(Path(*parts[:depth], "__init__.py") for depth in range(1, len(parts)))
        imported = file_imports(root / path, (root / path).stat().st_mtime_ns)
        pending.extend(name for name in imported if name.split(".")[0] in followed)
    return sorted(path for path in found if (root / path).is_file())


@cache
def file_imports(path: Path, mtime_ns: int) -> tuple[str, ...]:
    """`runtime_imports` of a file, parsed once per version (`mtime_ns`) of it.

    Every cacheable step walks the library when its module is imported, through mostly the
    same files.
    """
    return tuple(runtime_imports(path.read_text()))


def runtime_imports(source: str) -> list[str]:
    """The modules a module's source imports when it runs.

    `from a import b` gives both `a` and `a.b`, since `b` may be a module. Imports under
    `if TYPE_CHECKING:` are annotations only, and left out.
    """
    tree = ast.parse(source)
    annotations_only = {
        id(child)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for child in ast.walk(node)
    }
    names: list[str] = []
    for node in ast.walk(tree):
        if id(node) in annotations_only:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return names
