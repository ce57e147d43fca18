"""``python -m visgate_sdk vendor DIR``: the module copied into DIR with an unchecked-hash pyc
(PEP 552) beside it, so a read-only deployment (AWS Lambda) never compiles it; refuses to
replace a different copy without ``--force``; works from the repository file and from the
installed package layout (``visgate_sdk/__init__.py``)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
import sys
from typing import Any, Dict, Iterator, List, Tuple

import pytest

import visgate_sdk

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = os.path.join(ROOT, "visgate_sdk.py")
TAG = sys.implementation.cache_tag
VERSION = "%d.%d" % sys.version_info[:2]


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def pyc_of(directory: Any) -> str:
    return os.path.join(str(directory), "__pycache__", "visgate_sdk.%s.pyc" % TAG)


def python(*args: str, env: Dict[str, str], cwd: str) -> "subprocess.CompletedProcess[str]":
    """Run this Python with a clean environment (no PYTHONPATH from the test run)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return subprocess.run([sys.executable, *args], env=dict(base, **env), cwd=cwd, capture_output=True, text=True,
                          timeout=60)


def vendor(*args: str, capsys: Any) -> Tuple[int, str, str]:
    code = visgate_sdk.main(["vendor", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def read_only() -> Iterator[List[str]]:
    """Directories to make read-only for a test, writable again afterwards (so tmp_path cleans up)."""
    dirs: List[str] = []
    yield dirs
    for d in dirs:
        os.chmod(d, 0o755)


def test_vendor_copies_the_module_and_writes_an_unchecked_hash_pyc(tmp_path: Any, capsys: Any) -> None:
    dest = tmp_path / "build"
    code, out, err = vendor(str(dest), capsys=capsys)
    assert code == 0, err
    assert read(str(dest / "visgate_sdk.py")) == read(SOURCE)
    data = read(pyc_of(dest))
    assert data[:4] == importlib.util.MAGIC_NUMBER
    flags = int.from_bytes(data[4:8], "little")
    assert flags == 0b01  # hash-based, check_source off: PEP 552 "unchecked"
    assert data[8:16] == importlib.util.source_hash(read(SOURCE))
    # It says which Python the bytecode is for, and how to build for the Lambda runtime.
    assert TAG in out and VERSION in out and visgate_sdk.__version__ in out
    assert "Lambda runtime's Python version" in out and "python%s -m visgate_sdk vendor" % VERSION in out


def test_vendored_copy_imports_from_its_pyc_in_a_read_only_directory(tmp_path: Any, capsys: Any, read_only: List[str]) -> None:
    dest = tmp_path / "task"
    assert vendor(str(dest), capsys=capsys)[0] == 0
    pyc = pyc_of(dest)
    # The source's mtime changes (as unzipping may do): a timestamp pyc would be stale now.
    os.utime(str(dest / "visgate_sdk.py"), (1_000_000_000, 1_000_000_000))
    read_only.extend([str(dest / "__pycache__"), str(dest)])
    for d in read_only:
        os.chmod(d, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)  # 0o555
    before = sorted(os.listdir(str(dest))), sorted(os.listdir(str(dest / "__pycache__")))
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    run = python("-v", "-c", "import sys, visgate_sdk; print(visgate_sdk.__file__); print(visgate_sdk.__cached__); "
                 "print(sys.flags.dont_write_bytecode)",
                 env={"PYTHONPATH": str(dest), "PYTHONDONTWRITEBYTECODE": "1"}, cwd=str(elsewhere))
    assert run.returncode == 0, run.stderr[-2000:]
    file, cached, dont_write = run.stdout.split()
    assert file == str(dest / "visgate_sdk.py") and cached == pyc and dont_write == "1"
    # python -v: the pyc was accepted for the source and its code object loaded from it.
    assert "%s matches %s" % (pyc, dest / "visgate_sdk.py") in run.stderr
    assert "code object from '%s'" % pyc in run.stderr
    assert (sorted(os.listdir(str(dest))), sorted(os.listdir(str(dest / "__pycache__")))) == before


def test_the_pyc_is_trusted_without_reading_the_source_hash(tmp_path: Any, capsys: Any) -> None:
    # Unchecked: even a changed source is not recompiled (so never compiled on a cold start).
    dest = tmp_path / "build"
    assert vendor(str(dest), capsys=capsys)[0] == 0
    with open(str(dest / "visgate_sdk.py"), "a") as f:
        f.write("\nEDITED_AFTER_VENDORING = True\n")
    run = python("-c", "import visgate_sdk; print(hasattr(visgate_sdk, 'EDITED_AFTER_VENDORING'))",
                 env={"PYTHONPATH": str(dest), "PYTHONDONTWRITEBYTECODE": "1"}, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "False"


def test_python_dash_m_vendor_from_the_repository_file(tmp_path: Any) -> None:
    dest = tmp_path / "out"
    run = python("-m", "visgate_sdk", "vendor", str(dest), env={}, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert read(str(dest / "visgate_sdk.py")) == read(SOURCE)
    assert os.path.exists(pyc_of(dest))
    assert TAG in run.stdout


def test_vendor_from_the_installed_package_layout(tmp_path: Any) -> None:
    # The wheel installs the file as visgate_sdk/__init__.py with packaging/__main__.py beside it.
    site = tmp_path / "site"
    pkg = site / "visgate_sdk"
    pkg.mkdir(parents=True)
    shutil.copyfile(SOURCE, str(pkg / "__init__.py"))
    shutil.copyfile(os.path.join(ROOT, "packaging", "__main__.py"), str(pkg / "__main__.py"))
    dest = tmp_path / "out"
    run = python("-m", "visgate_sdk", "vendor", str(dest), env={"PYTHONPATH": str(site)}, cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr
    assert read(str(dest / "visgate_sdk.py")) == read(SOURCE)
    assert not os.path.exists(str(dest / "__init__.py"))
    data = read(pyc_of(dest))
    assert int.from_bytes(data[4:8], "little") == 0b01
    assert data[8:16] == importlib.util.source_hash(read(SOURCE))


def test_a_different_existing_copy_is_refused_without_force(tmp_path: Any, capsys: Any) -> None:
    old = b"# an older visgate_sdk\n__version__ = '0.0.1'\n"
    (tmp_path / "visgate_sdk.py").write_bytes(old)
    code, out, err = vendor(str(tmp_path), capsys=capsys)
    assert code == 2
    assert "differs" in err and "--force" in err and out == ""
    assert (tmp_path / "visgate_sdk.py").read_bytes() == old
    assert not os.path.exists(pyc_of(tmp_path))


def test_force_replaces_a_different_copy_and_drops_its_stale_bytecode(tmp_path: Any, capsys: Any) -> None:
    (tmp_path / "visgate_sdk.py").write_bytes(b"OLD = 1\n")
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    stale = cache / "visgate_sdk.cpython-399.pyc"  # an unchecked pyc of the old source for another Python
    stale.write_bytes(b"stale")
    other = cache / "helper.cpython-399.pyc"
    other.write_bytes(b"not ours")
    code, _out, err = vendor(str(tmp_path), "--force", capsys=capsys)
    assert code == 0, err
    assert read(str(tmp_path / "visgate_sdk.py")) == read(SOURCE)
    assert os.path.exists(pyc_of(tmp_path))
    assert not stale.exists() and other.exists()


def test_the_same_copy_is_fine_and_its_pyc_refreshed(tmp_path: Any, capsys: Any) -> None:
    assert vendor(str(tmp_path), capsys=capsys)[0] == 0
    os.unlink(pyc_of(tmp_path))
    other_python = tmp_path / "__pycache__" / "visgate_sdk.cpython-399.pyc"  # built from the same source: kept
    other_python.write_bytes(b"x")
    code, out, err = vendor(str(tmp_path), capsys=capsys)
    assert code == 0, err
    assert "refreshed" in out
    assert os.path.exists(pyc_of(tmp_path)) and other_python.exists()


def test_vendor_refuses_the_modules_own_directory(tmp_path: Any) -> None:
    # An unchecked pyc beside a working copy would hide every later edit of it.
    work = tmp_path / "checkout"
    work.mkdir()
    shutil.copyfile(SOURCE, str(work / "visgate_sdk.py"))
    run = python("-m", "visgate_sdk", "vendor", str(work), env={"PYTHONDONTWRITEBYTECODE": "1"}, cwd=str(work))
    assert run.returncode == 2 and "own source" in run.stderr
    assert not (work / "__pycache__").exists()


def test_vendor_into_a_file_is_a_usage_error(tmp_path: Any, capsys: Any) -> None:
    target = tmp_path / "not-a-dir"
    target.write_text("x")
    code, _out, err = vendor(str(target), capsys=capsys)
    assert code == 2 and "not a directory" in err


def test_vendor_into_an_unwritable_directory_says_so(tmp_path: Any, capsys: Any, read_only: List[str]) -> None:
    if os.geteuid() == 0:  # root writes anywhere: make the target path impossible instead
        dest = str(tmp_path / "file") + "/sub"
        (tmp_path / "file").write_text("x")
    else:
        read_only.append(str(tmp_path))
        os.chmod(str(tmp_path), 0o555)
        dest = str(tmp_path / "sub")
    code, _out, err = vendor(dest, capsys=capsys)
    assert code == 1 and "cannot vendor" in err


def test_vendor_needs_a_directory_argument(capsys: Any) -> None:
    with pytest.raises(SystemExit) as info:
        visgate_sdk.main(["vendor"])
    assert info.value.code == 2
