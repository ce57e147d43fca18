"""The module itself: ``__all__``, the ``visgate_sdk.exceptions`` import path (also from a
vendored copy), what importing it costs, ``__version__``, and standard-library-only imports."""

from __future__ import annotations

import ast
import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from typing import Sequence, Set

import pytest

import visgate_sdk
from tests.conftest import EXCEPTION_NAMES

SOURCE_PATH = os.path.abspath(visgate_sdk.__file__)
ROOT = os.path.dirname(SOURCE_PATH)

with open(SOURCE_PATH, encoding="utf-8") as _f:
    SOURCE = _f.read()
TREE = ast.parse(SOURCE)


# The reference client's (visgate-sdk 0.0.3) public names: all must exist here too.
REFERENCE_ALL = [
    "Client",
    "AsyncClient",
    "GenerateResult",
    "ImageResult",
    "VideoResult",
    "ModelInfo",
    "ModelsResponse",
    "FeaturedSection",
    "UsageSummary",
    "RequestStatusResult",
    "ProviderBalanceItem",
    "ProviderBalancesResponse",
    "ProviderKeyInfo",
    "ProviderKeysResponse",
    "ProviderValidationResult",
    "VisgateError",
    "AuthenticationError",
    "ValidationError",
    "RateLimitError",
    "ProviderError",
    "TimeoutError",
    "ConnectionError",
    "__version__",
]


def run_python(code: str, *args: str, path: Sequence[str] = (ROOT,), cwd: str = ROOT) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter without site-packages or environment hooks; ``path`` is its PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join(path)
    return subprocess.run(
        [sys.executable, "-S", "-c", textwrap.dedent(code), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _top_level_public_definitions() -> Set[str]:
    names: Set[str] = set()
    for node in TREE.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
    return {n for n in names if not n.startswith("_")}


# -- __all__ -------------------------------------------------------------------------


def test_every_name_in_all_exists_once() -> None:
    assert len(visgate_sdk.__all__) == len(set(visgate_sdk.__all__))
    missing = [name for name in visgate_sdk.__all__ if not hasattr(visgate_sdk, name)]
    assert missing == []


def test_every_public_class_and_function_is_in_all() -> None:
    public = {
        name
        for name, obj in vars(visgate_sdk).items()
        if not name.startswith("_")
        and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == "visgate_sdk"
    }
    assert public - set(visgate_sdk.__all__) == set()


def test_all_lists_exactly_the_public_top_level_definitions() -> None:
    defined = _top_level_public_definitions()
    assert defined - set(visgate_sdk.__all__) == set()
    assert set(visgate_sdk.__all__) - defined == {"__version__"}


def test_star_import_gives_the_public_api() -> None:
    namespace: dict = {}
    exec("from visgate_sdk import *", namespace)
    assert {n for n in namespace if n != "__builtins__"} == set(visgate_sdk.__all__)


def test_reference_client_names_are_all_here() -> None:
    for name in REFERENCE_ALL:
        assert name in visgate_sdk.__all__, name
        assert hasattr(visgate_sdk, name), name


# -- visgate_sdk.exceptions ------------------------------------------------------------


def test_exceptions_submodule_import() -> None:
    from visgate_sdk.exceptions import (
        AuthenticationError,
        ProviderError,
        RateLimitError,
        TimeoutError,
        ValidationError,
        VisgateError,
    )

    assert AuthenticationError is visgate_sdk.AuthenticationError
    assert RateLimitError is visgate_sdk.RateLimitError
    assert ProviderError is visgate_sdk.ProviderError
    assert ValidationError is visgate_sdk.ValidationError
    assert TimeoutError is visgate_sdk.TimeoutError
    assert VisgateError is visgate_sdk.VisgateError


def test_exceptions_submodule_has_every_error() -> None:
    exceptions = sys.modules["visgate_sdk.exceptions"]
    assert visgate_sdk.exceptions is exceptions
    assert sorted(exceptions.__all__) == sorted(EXCEPTION_NAMES)
    for name in EXCEPTION_NAMES:
        assert getattr(exceptions, name) is getattr(visgate_sdk, name)
    errors_here = {
        name for name, obj in vars(visgate_sdk).items()
        if inspect.isclass(obj) and issubclass(obj, visgate_sdk.VisgateError)
    }
    assert errors_here == set(EXCEPTION_NAMES)


def test_exceptions_find_spec() -> None:
    spec = importlib.util.find_spec("visgate_sdk.exceptions")
    assert spec is not None
    assert spec.name == "visgate_sdk.exceptions"


def test_exceptions_import_forms_in_a_fresh_interpreter() -> None:
    result = run_python(
        """
        import importlib, importlib.util
        import visgate_sdk.exceptions
        import visgate_sdk.exceptions as exc
        from visgate_sdk.exceptions import VisgateError, AuthenticationError
        assert importlib.util.find_spec("visgate_sdk.exceptions") is not None
        assert importlib.import_module("visgate_sdk.exceptions") is exc
        import visgate_sdk
        assert exc.VisgateError is visgate_sdk.VisgateError is VisgateError
        assert visgate_sdk.exceptions.AuthenticationError is AuthenticationError
        print("ok")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_exceptions_import_first_in_a_fresh_interpreter() -> None:
    # The README imports the submodule before (or without) the top-level module.
    result = run_python(
        """
        from visgate_sdk.exceptions import RateLimitError
        from visgate_sdk import RateLimitError as top
        assert RateLimitError is top
        print("ok")
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_vendored_copy(tmp_path: "os.PathLike[str]") -> None:
    vendor = os.path.join(str(tmp_path), "myapp", "_vendor")
    os.makedirs(vendor)
    for folder in (os.path.join(str(tmp_path), "myapp"), vendor):
        with open(os.path.join(folder, "__init__.py"), "w") as f:
            f.write("")
    shutil.copy(SOURCE_PATH, os.path.join(vendor, "visgate_sdk.py"))
    result = run_python(
        """
        import sys
        import importlib.util
        from myapp._vendor.visgate_sdk.exceptions import VisgateError, AuthenticationError
        from myapp._vendor.visgate_sdk import Client, VisgateError as V2
        import myapp._vendor.visgate_sdk as vendored
        assert VisgateError is V2 is vendored.VisgateError
        assert vendored.exceptions.AuthenticationError is AuthenticationError
        assert Client.__module__ == "myapp._vendor.visgate_sdk"
        assert importlib.util.find_spec("myapp._vendor.visgate_sdk.exceptions") is not None
        # A vendored copy and an installed one live side by side without clobbering.
        import visgate_sdk, visgate_sdk.exceptions
        assert visgate_sdk.exceptions.VisgateError is visgate_sdk.VisgateError
        assert visgate_sdk.VisgateError is not VisgateError
        assert sys.modules["myapp._vendor.visgate_sdk.exceptions"].VisgateError is VisgateError
        assert "exceptions" not in sys.modules
        print(Client.__name__)
        """,
        path=(str(tmp_path), ROOT),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Client"


# -- import cost -----------------------------------------------------------------------

LAZY = ["asyncio", "ssl", "http.client", "urllib.request", "logging", "argparse", "json", "email", "concurrent.futures"]


def test_import_does_not_load_heavy_modules() -> None:
    result = run_python(
        """
        import sys
        preloaded = [m for m in sys.argv[1:] if m in sys.modules]
        assert not preloaded, preloaded
        import visgate_sdk
        print(",".join(m for m in sys.argv[1:] if m in sys.modules))
        """,
        *LAZY,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_creating_a_sync_client_does_not_load_asyncio_or_ssl() -> None:
    result = run_python(
        """
        import sys
        import visgate_sdk
        client = visgate_sdk.Client("vg-k")
        repr(client)
        client.close()
        print(",".join(m for m in ("asyncio", "ssl", "logging", "json") if m in sys.modules))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


# -- version and imports -----------------------------------------------------------------


def test_version_is_a_string_literal_in_the_source() -> None:
    literals = [
        node.value
        for node in TREE.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
    ]
    assert len(literals) == 1
    assert isinstance(literals[0], ast.Constant) and isinstance(literals[0].value, str)
    assert literals[0].value == visgate_sdk.__version__
    parts = visgate_sdk.__version__.split(".")
    assert len(parts) >= 3 and all(p.isdigit() for p in parts[:2])


def _is_stdlib(name: str) -> bool:
    if sys.version_info >= (3, 10):
        return name in sys.stdlib_module_names  # type: ignore[attr-defined]
    if name in sys.builtin_module_names:
        return True
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return False
    if spec.origin in ("built-in", "frozen"):
        return True
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    origin = os.path.realpath(spec.origin)
    return origin.startswith(stdlib + os.sep) and "site-packages" not in origin


def test_only_standard_library_imports() -> None:
    # Everywhere, including `if TYPE_CHECKING:` blocks: type checkers must not need a package either.
    imports = [node for node in ast.walk(TREE) if isinstance(node, (ast.Import, ast.ImportFrom))]
    assert imports, "expected to find import statements"
    top_names: Set[str] = set()
    for node in imports:
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import at line %d" % node.lineno
            top_names.add((node.module or "").split(".")[0])
        else:
            for alias in node.names:  # type: ignore[attr-defined]
                top_names.add(alias.name.split(".")[0])
    not_stdlib = sorted(n for n in top_names if not _is_stdlib(n))
    assert not_stdlib == []


def test_stdlib_check_would_catch_a_third_party_import() -> None:
    assert not _is_stdlib("pytest")
    assert not _is_stdlib("werkzeug")
    assert _is_stdlib("json") and _is_stdlib("http")


def test_module_runs_on_this_interpreter_without_warnings() -> None:
    result = run_python(
        """
        import warnings
        warnings.simplefilter("error")
        import visgate_sdk
        print(visgate_sdk.__version__)
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == visgate_sdk.__version__


@pytest.mark.parametrize("name", ["Client", "AsyncClient", "Retry", "VisgateError", "GenerateResult"])
def test_public_objects_have_docstrings(name: str) -> None:
    assert (getattr(visgate_sdk, name).__doc__ or "").strip()


def test_async_client_options_are_clients_arguments() -> None:
    # AsyncClient(**options) is typed by the _ClientOptions TypedDict: it must list exactly the
    # keyword arguments of Client (a new Client option that is missing would be a type error there).
    typed = next(node for node in ast.walk(TREE) if isinstance(node, ast.ClassDef) and node.name == "_ClientOptions")
    fields = {stmt.target.id for stmt in typed.body if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)}
    params = inspect.signature(visgate_sdk.Client.__init__).parameters
    assert fields == {name for name, p in params.items() if p.kind is p.KEYWORD_ONLY}
