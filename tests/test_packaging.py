"""Packaging: the wheel's typing files agree with the one source file; editable installs
import the working tree."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import visgate_sdk

ROOT = Path(__file__).resolve().parent.parent


def test_exceptions_module_lists_exactly_the_exceptions_submodule():
    tree = ast.parse((ROOT / "packaging" / "exceptions.py").read_text(encoding="utf-8"))
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
    assert '"packaging/exceptions.py" = "visgate_sdk/exceptions.py"' in pyproject  # a source, not only a stub: pyright
    assert '"visgate_emulator.py" = "visgate_emulator/__init__.py"' in pyproject   # typed too, beside its py.typed
    assert (ROOT / "packaging" / "emulator" / "py.typed").exists()
    assert 'path = "visgate_sdk.py"' in pyproject  # the version's single source
    assert (ROOT / "packaging" / "py.typed").exists()
    main = (ROOT / "packaging" / "__main__.py").read_text(encoding="utf-8")
    assert "from visgate_sdk import main" in main


def test_editable_install_imports_the_working_tree(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = str(venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))
    command = [py, "-m", "pip", "install", "-q", "--no-deps", "--disable-pip-version-check"]
    if importlib.util.find_spec("hatchling") is not None:
        command.append("--no-build-isolation")  # else pip fetches hatchling from the package index
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    if importlib.util.find_spec("hatchling") is not None:
        # --no-build-isolation: the venv's pip runs the backend from this interpreter's packages
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and "site-packages" in p)
    subprocess.run([*command, "-e", str(ROOT)], check=True, cwd=tmp_path, env=env, timeout=600)
    env.pop("PYTHONPATH", None)
    code = "import visgate_sdk, visgate_emulator, visgate_sdk.exceptions; print(visgate_sdk.__file__); print(visgate_emulator.__file__)"
    out = subprocess.run([py, "-c", code], check=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60).stdout
    assert out.split() == [str(ROOT / "visgate_sdk.py"), str(ROOT / "visgate_emulator.py")]
    version = subprocess.run([py, "-m", "visgate_sdk", "--version"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and version.stdout.strip() == "visgate-sdk " + visgate_sdk.__version__
