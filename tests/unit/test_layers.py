"""The import contract of docs/architecture.md: every srnsz module imports only from its own layer or those below.

LAYERS lists the layers from the top; a module belongs to the layer of its longest listed prefix. Imports inside
functions count too (a lazy upward import is still an upward dependency)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

LAYERS: list[tuple[str, ...]] = [  # top to bottom
    ("srnsz.cli", "srnsz.training"),  # the two commands: srnsz, srnsz-train
    ("srnsz.io", "srnsz.eval", "srnsz.pipeline.targets", "srnsz.examples"),  # files, benchmarks, bound searches
    ("srnsz.api",),  # compress / decompress / info: assembles streams from the stages
    ("srnsz.pipeline",),  # policies above the predictors (selection, quality modes)
    ("srnsz.predictors",),
    ("srnsz.neural", "srnsz.missing", "srnsz.restoration"),
    ("srnsz.coding", "srnsz.decomposition", "srnsz.quantizer", "srnsz.bounds", "srnsz.metrics", "srnsz.networks"),
    ("srnsz.format", "srnsz.coding.lossless"),  # the container, header schema and metadata sections
    ("srnsz.errors", "srnsz.compiled", "srnsz.assets", "srnsz.parallel", "srnsz.blas_threads"),
]


def layer_of(module: str) -> int | None:
    """The index in LAYERS of ``module`` (its longest listed prefix), None for the package itself or others."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


# srnsz.networks and srnsz.training live in the top-level folders networks/ and training/ (setup.py's package_dir)
MAPPED = {"networks": "srnsz.networks", "training": "srnsz.training"}


def source_path(name: str) -> Path:
    """The path of module ``name`` without its suffix."""
    parts = name.split(".")
    if len(parts) > 1 and f"srnsz.{parts[1]}" in MAPPED.values():
        parts = parts[1:]
    return ROOT.joinpath(*parts)


def is_module(name: str) -> bool:
    path = source_path(name)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(source: str) -> list[tuple[str, int]]:
    """(srnsz module, line) for every import in ``source``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "srnsz":
            # `from srnsz.coding import lossless` imports the module srnsz.coding.lossless
            names = [f"{node.module}.{a.name}" if is_module(f"{node.module}.{a.name}") else node.module
                     for a in node.names]
            found += [(name, node.lineno) for name in names]
        elif isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.split(".")[0] == "srnsz"]
    return found


def upward_imports(module: str, source: str) -> list[str]:
    """The imports of ``module`` (its ``source``) from a layer above its own."""
    own = layer_of(module)
    if own is None:
        return []
    return [f"{module}:{line} imports {target}" for target, line in imported_modules(source)
            if (above := layer_of(target)) is not None and above < own]


def package_modules() -> dict[str, str]:
    modules = {}
    for folder in ("srnsz", *MAPPED):
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if folder in MAPPED:
                parts = ("srnsz", *parts)
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path.read_text()
    return modules


def test_every_module_has_a_layer():
    unplaced = [m for m in package_modules() if m != "srnsz" and layer_of(m) is None]
    assert not unplaced, f"add these modules to LAYERS: {unplaced}"


def test_no_module_imports_from_a_layer_above_its_own():
    violations = [v for module, source in package_modules().items() for v in upward_imports(module, source)]
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize("module,line", [
    ("srnsz.format.container", "from srnsz.api import compress"),
    ("srnsz.predictors.interp", "    from srnsz.pipeline import selection"),
    ("srnsz.coding.entropy", "import srnsz.predictors.base"),
    ("srnsz.metrics", "from srnsz import api"),
    ("srnsz.networks.hat", "from srnsz.neural import fixed_point"),
])
def test_a_deliberate_upward_import_is_caught(module, line):
    source = package_modules()[module]
    if line.startswith(" "):
        source += f"\n\ndef _probe():\n{line}\n"
    else:
        source += f"\n{line}\n"
    assert upward_imports(module, source), f"{line!r} in {module} was not caught"
