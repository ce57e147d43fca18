"""Packaging: the wheel's typing files agree with the one source file."""

from __future__ import annotations

import ast
from pathlib import Path

import visgate_sdk

ROOT = Path(__file__).resolve().parent.parent


def test_exceptions_stub_lists_exactly_the_exceptions_submodule():
    tree = ast.parse((ROOT / "packaging" / "exceptions.pyi").read_text(encoding="utf-8"))
    imported = [alias.asname for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names]
    declared = next(
        ast.literal_eval(node.value) for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__"
    )
    assert imported == declared == list(visgate_sdk.exceptions.__all__)


def test_wheel_maps_the_single_source_file_into_a_typed_package():
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert '"visgate_sdk.py" = "visgate_sdk/__init__.py"' in pyproject
    assert '"packaging/py.typed" = "visgate_sdk/py.typed"' in pyproject
    assert 'path = "visgate_sdk.py"' in pyproject  # the version's single source
    assert (ROOT / "packaging" / "py.typed").exists()
    main = (ROOT / "packaging" / "__main__.py").read_text(encoding="utf-8")
    assert "from visgate_sdk import main" in main
