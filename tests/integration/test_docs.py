"""The manual: the README is a short front page, the guide covers every command-line option, every public name has
a docstring, the site builds strictly, and no page or comment narrates past work instead of stating what is."""

from __future__ import annotations

import argparse
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import srnsz
import srnsz.io
from srnsz.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
GUIDE = "\n".join(p.read_text() for p in sorted((REPO / "docs" / "guide").glob("*.md")))

# Phrases that tell a story of how the work went (sessions, machines, attempts) instead of what srnsz is and does.
NARRATION = re.compile(
    r"\bsessions?\b|\bwork periods?\b|\bwe (?:tried|found|saw|measured|decided)\b|\breverted\b|\bthis machine\b"
    r"|\bthis (?:cpu|computer|box|laptop)\b|\bearlier machines?\b|\bthis file's history\b"
    r"|\bour (?:last|first) attempt\b",
    re.IGNORECASE)


def _narrated_files() -> list[Path]:
    docs = [REPO / "README.md", REPO / "CHANGELOG.md", *sorted((REPO / "docs").rglob("*.md"))]
    code = [p for folder in ("srnsz", "networks", "training") for p in sorted((REPO / folder).rglob("*"))
            if p.suffix in (".py", ".c", ".h", ".yaml")]
    return docs + code + sorted((REPO / "configs").rglob("*.yaml")) + sorted((REPO / "examples").glob("*.py"))


def test_readme_is_a_short_front_page_with_the_tour_first():
    lines = README.splitlines()
    assert len(lines) < 150
    head = "\n".join(lines[:60])
    assert "## A 30-second tour" in head
    for shown in ("srnsz compress", "srnsz.compress(", "-o out.zarr", "xr.open_zarr(",
                  "srnsz-train experiment=finetune"):
        assert shown in head, shown


def test_readme_keeps_the_set_up_commands_ci_runs():
    assert ('python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && '
            "srnsz eval --example --eb 1e-3\npython -m pytest -q\n") in README
    ci = (REPO / ".ci" / "run").read_text()
    assert "\npython -m pytest -q\n" in ci and "mkdocs build --strict" in ci and '".[dev,docs]"' in ci


def test_readme_links_lead_to_files_of_the_repository():
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README)
    assert targets and not [t for t in targets if "://" not in t and not (REPO / t).exists()]


def test_readme_results_name_their_commands_and_dates():
    results = README.split("## Results", 1)[1].split("\n## ", 1)[0]
    for peer in ("SZ3", "SPERR", "ZFP"):
        assert peer in results
    for command in ("benchmarks/readme_results.sh", "benchmarks/rate_distortion.py", "benchmarks/speed.py"):
        assert command in results
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", results)


def test_no_page_or_comment_narrates_past_work():
    hits = [f"{path.relative_to(REPO)}:{n}: {line.strip()}" for path in _narrated_files()
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1) if NARRATION.search(line)]
    assert not hits, "\n".join(hits)


def _public(module) -> list[tuple[str, object]]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n, o in vars(module).items() if not n.startswith("_") and (inspect.isfunction(o) or
                 inspect.isclass(o)) and getattr(o, "__module__", None) == module.__name__]
    found = []
    for name in names:
        obj = getattr(module, name)
        found.append((f"{module.__name__}.{name}", obj))
        if inspect.isclass(obj):
            for member, value in vars(obj).items():
                if member.startswith("_"):
                    continue
                if isinstance(value, property):
                    value = value.fget
                elif isinstance(value, (classmethod, staticmethod)):
                    value = value.__func__
                if inspect.isfunction(value):
                    found.append((f"{module.__name__}.{name}.{member}", value))
    return found


def test_every_public_name_of_srnsz_and_srnsz_io_has_a_docstring():
    modules = [srnsz, srnsz.io] + [importlib.import_module(f"srnsz.io.{m.name}")
                                   for m in pkgutil.iter_modules(srnsz.io.__path__)]
    public = [item for module in modules for item in _public(module)]
    assert len(public) > 50
    missing = [name for name, obj in public if not (obj.__doc__ or "").strip()]
    assert not missing, missing


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_guide_covers_every_subcommand_and_option():
    uncovered = []
    for name, parser in _subcommands().items():
        if f"srnsz {name}" not in GUIDE:
            uncovered.append(f"srnsz {name}")
        for action in parser._actions:
            for option in action.option_strings:
                if option in ("-h", "--help"):
                    continue
                if not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", GUIDE):
                    uncovered.append(f"srnsz {name} {option}")
    assert not uncovered, uncovered


def test_the_site_builds_strictly(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path / "site")]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "reference" / "api" / "index.html").exists()
    assert (tmp_path / "site" / "format" / "index.html").exists()
