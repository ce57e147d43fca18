"""Our own docs cannot drift: every snippet of README.md and examples/README.md is run or checked.

- Every fenced ```python block runs in a fresh process (a fresh namespace) against the local
  emulator (``VISGATE_API_KEY``/``VISGATE_BASE_URL`` aimed at it through ``env_emulator``),
  with ``tmp_path`` as its working directory (files it saves land there) and
  ``-W error::ResourceWarning``: a snippet that raises, times out or leaks a socket or file fails.
  Snippets are excerpts: names a reader has from the sections above (``client``, ``prompts``,
  ``log``, ...) are set up by ``READER_CONTEXT``; what one snippet needs beyond that (a vendored
  copy, a Lambda ``context`` to call its handler with) is in ``SETUP``, keyed by a line of it.
- A block preceded by ``<!-- not run: reason -->`` is not run; such markers must be listed in
  ``NOT_RUN``, and the test asserts it ran at least (python blocks - listed exceptions).
- Command lines in ```bash blocks (and ``$ `` lines of plain blocks): every ``visgate ...`` /
  ``python3 -m visgate_sdk ...`` parses with ``_cli_parser()``, every ``python3 -m visgate_emulator``
  with its parser, every ``python3 examples/...`` / ``bench/...`` script exists and its arguments
  parse.
  Command lines quoted in the text (`` `python3 examples/17_batch.py` ``) are checked the same way.
- Every repository path the docs mention (``examples/17_batch.py``, ``bench/results.svg``, links)
  exists, and every ``](#anchor)`` link names a heading.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import pytest

import visgate_emulator
import visgate_sdk
from visgate_emulator import DEMO_API_KEY

ROOT = Path(__file__).resolve().parent.parent
DOCS = ("README.md", "examples/README.md")
SNIPPET_TIMEOUT = 60.0

# Blocks marked ``<!-- not run: reason -->`` in the docs: (file, reason). A marker not listed
# here, or listed and gone, fails ``test_not_run_markers_are_listed``.
NOT_RUN: Tuple[Tuple[str, str], ...] = ()


class Block(NamedTuple):
    doc: str  # "README.md"
    line: int  # line of the first code line, 1-based
    lang: str  # "python", "bash", "" ...
    code: str
    not_run: Optional[str]  # the reason of a preceding <!-- not run: ... --> marker


_FENCE = re.compile(r"^```(\w*)\s*$")
_NOT_RUN = re.compile(r"^<!--\s*not run:\s*(.+?)\s*-->\s*$")


def parse_blocks(doc: str) -> List[Block]:
    lines = (ROOT / doc).read_text(encoding="utf-8").splitlines()
    blocks: List[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i + 1
        end = start
        while end < len(lines) and lines[end].rstrip() != "```":
            end += 1
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        marker = _NOT_RUN.match(previous.strip())
        blocks.append(Block(doc, start + 1, m.group(1), "\n".join(lines[start:end]) + "\n", marker.group(1) if marker else None))
        i = end + 1
    return blocks


ALL_BLOCKS = [b for doc in DOCS for b in parse_blocks(doc)]
PYTHON_BLOCKS = [b for b in ALL_BLOCKS if b.lang == "python"]


# -- python snippets ---------------------------------------------------------------------

# What a reader has from the sections above a snippet: a client aimed (by the environment) at
# the emulator, and the placeholders the text leaves to them.
READER_CONTEXT = '''
import logging
from visgate_sdk import Client, VisgateError
log = logging.getLogger("docs")
prompts = ["a red tram", "a blue ferry", "a lighthouse"]
def current_traceparent():
    return "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
client = Client()
_reader_client = client
'''

class Setup(NamedTuple):
    before: str = ""  # code run before the snippet
    after: str = ""  # code run after it: checks that it did what the text says
    stdout: str = ""  # a regex its output must match (for a branch the snippet only prints from)


# Per snippet, keyed by a line that occurs in exactly one python block.
SETUP: Dict[str, Setup] = {
    # Vendoring: the copy the snippet imports, where the section says to put it.
    "from myapp._vendor.visgate_sdk import Client": Setup(
        "import os, shutil, visgate_sdk\n"
        "os.makedirs('myapp/_vendor')\n"
        "open('myapp/__init__.py', 'w').close(); open('myapp/_vendor/__init__.py', 'w').close()\n"
        "shutil.copy(visgate_sdk.__file__, 'myapp/_vendor/visgate_sdk.py')\n",
        "assert Client.__module__ == 'myapp._vendor.visgate_sdk' and RateLimitError.__module__.startswith('myapp._vendor')\n",
    ),
    # AWS Lambda: the snippet defines the handler; play an invocation and a resumption with a context.
    "def handler(event, context):": Setup(
        "",
        "class _Context:\n"
        "    def get_remaining_time_in_millis(self):\n"
        "        return 30000\n"
        "_first = handler({'prompt': 'waves at dusk'}, _Context())\n"
        "assert _first['request_id'], _first\n"
        "_again = handler({'request_id': _first['request_id']}, _Context())\n"
        "assert _again['status'] == 'completed', _again\n",
    ),
    # Errors you can paste: the except branch ran, and printed a curl command without the key.
    "print(e.to_curl())": Setup(
        stdout=r"(?m)^curl -X POST http://127\.0\.0\.1:\d+/api/v1/images/generate .*\$VISGATE_API_KEY(?!.*%s)" % re.escape(DEMO_API_KEY)
    ),
    # visgate doctor: every check passes against the emulator (plain HTTP: CA bundle and TLS skipped).
    "report = client.doctor(timeout=5)": Setup(stdout=r"all checks passed"),
}


def _setup_for(block: Block) -> Setup:
    return next((setup for key, setup in SETUP.items() if key in block.code), Setup())


_TEARDOWN = '''
import asyncio as _asyncio
from visgate_sdk import AsyncClient as _AsyncClient, Client as _Client
for _value in list(globals().values()) + [_reader_client]:
    if isinstance(_value, _AsyncClient):
        _asyncio.run(_value.close())
    elif isinstance(_value, _Client):
        _value.close()
'''


def snippet_script(block: Block, source_file: Path) -> str:
    """The program a snippet runs as: the reader's context, its setup, itself (read from
    ``source_file``, padded so that tracebacks point at the doc's own lines), its checks, and
    every client it left open closed."""
    setup = _setup_for(block)
    source_file.write_text("\n" * (block.line - 1) + block.code, encoding="utf-8")
    run = "with open(%r, encoding='utf-8') as _f:\n    exec(compile(_f.read(), %r, 'exec'), globals())\n" % (str(source_file), block.doc)
    return "\n".join([READER_CONTEXT, setup.before, run, setup.after, _TEARDOWN])


def run_snippet(block: Block, cwd: Path) -> Optional[str]:
    """Run one python block; None when it passed, else what went wrong."""
    script = cwd / "_snippet.py"  # in cwd: sys.path[0], as for a script the reader runs there
    script.write_text(snippet_script(block, cwd / "_snippet_source.txt"), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p))
    try:
        proc = subprocess.run(
            [sys.executable, "-W", "error::ResourceWarning", str(script)],
            cwd=str(cwd),
            env=env,
            capture_output=True,
            timeout=SNIPPET_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return "timed out after %gs" % SNIPPET_TIMEOUT
    stderr = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        return "exit %d\n%s" % (proc.returncode, stderr[-3000:])
    if "ResourceWarning" in stderr or "Exception ignored" in stderr:
        return "left something open:\n%s" % stderr[-3000:]
    stdout = proc.stdout.decode("utf-8", "replace")
    expected = _setup_for(block).stdout
    if expected and not re.search(expected, stdout):
        return "its output does not match %r:\n%s" % (expected, stdout[-3000:])
    return None


def test_docs_have_python_snippets() -> None:
    assert len([b for b in PYTHON_BLOCKS if b.doc == "README.md"]) >= 20


def test_not_run_markers_are_listed() -> None:
    found = sorted((b.doc, b.not_run) for b in ALL_BLOCKS if b.not_run)
    assert found == sorted(NOT_RUN), "a <!-- not run: ... --> marker must be listed in NOT_RUN (and a listed one must exist)"


def test_setup_keys_match_one_snippet_each() -> None:
    for key in SETUP:
        matches = [b for b in PYTHON_BLOCKS if key in b.code]
        assert len(matches) == 1, "SETUP key %r matches %d python blocks" % (key, len(matches))


def test_python_snippets_run(env_emulator: Any, tmp_path: Path) -> None:
    """Each python block runs, in its own process and folder, against the emulator."""
    ran = 0
    failures: List[str] = []
    for n, block in enumerate(PYTHON_BLOCKS):
        if block.not_run:
            continue
        cwd = tmp_path / ("%02d" % n)
        cwd.mkdir()
        problem = run_snippet(block, cwd)
        ran += 1
        if problem is not None:
            failures.append("%s:%d\n%s\n--- %s" % (block.doc, block.line, block.code, problem))
    assert not failures, "\n\n".join(failures)
    assert ran >= len(PYTHON_BLOCKS) - len(NOT_RUN)
    assert ran == len(PYTHON_BLOCKS) - sum(1 for b in PYTHON_BLOCKS if b.not_run)


# -- command lines -----------------------------------------------------------------------


def command_lines(block: Block) -> List[List[str]]:
    """The commands of a bash block (or the ``$ `` lines of a plain one), split into words:
    comments, ``VAR=value`` prefixes and ``&&``/``;``/``|`` chains taken apart."""
    commands: List[List[str]] = []
    for raw in block.code.splitlines():
        line = raw.strip()
        if block.lang != "bash":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        current: List[str] = []
        for word in [*words, "&&"]:
            if word in ("&&", ";", "|", "||"):
                while current and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", current[0]):
                    current.pop(0)
                if current:
                    commands.append(current)
                current = []
            else:
                current.append(word)
    return commands


class _Parsed(Exception):
    pass


def _load_example(name: str) -> Any:
    spec = importlib.util.spec_from_file_location("_docs_" + name, ROOT / "examples" / (name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_run_all(args: List[str]) -> None:
    """``run_all_capabilities.py ARGS``: its parser and its step selection accept them (nothing runs)."""
    module = _load_example("run_all_capabilities")
    real_select = module.select

    def select(steps: Any, cheap: bool) -> Any:
        raise _Parsed(real_select(steps, cheap))

    module.select = select
    with pytest.raises(_Parsed), contextlib.redirect_stderr(io.StringIO()):
        module.main(args)


def check_command(words: List[str]) -> Optional[str]:
    """Why a documented command line would not work, or None. Commands of other tools are ignored."""
    try:
        if words[0] == "visgate":
            visgate_sdk._cli_parser().parse_args(words[1:])
            return None
        if not re.match(r"^python(3(\.\d+)?)?$", words[0]) or len(words) < 2:
            return None
        args = words[1:]
        if args[:2] == ["-m", "visgate_sdk"]:
            visgate_sdk._cli_parser().parse_args(args[2:])
        elif args[:2] == ["-m", "visgate_emulator"]:
            visgate_emulator._arguments(args[2:])
        elif args[0].startswith(("examples/", "bench/")):
            script = ROOT / args[0]
            if not script.is_file():
                return "no such file: %s" % args[0]
            if args[0] == "examples/run_all_capabilities.py":
                _check_run_all(args[1:])
            elif args[0] == "examples/run_with_env.py":
                if args[1:] and args[1].endswith(".py"):
                    if not (ROOT / "examples" / args[1]).is_file():
                        return "no such example: %s" % args[1]
                else:
                    _check_run_all(args[1:])
            elif args[1:]:
                help_text = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60).stdout
                for word in args[1:]:
                    if word.startswith("-") and word.split("=")[0] not in help_text:
                        return "%s has no option %s" % (args[0], word)
    except SystemExit as exc:  # --help and --version exit 0: the line works
        return None if exc.code in (0, None) else "the parser refused it (exit %s)" % exc.code
    return None


_INLINE = re.compile(r"`((?:python3?(?:\.\d+)?|visgate) [^`]+)`")


def _subcommands() -> List[str]:
    import argparse

    parser = visgate_sdk._cli_parser()
    return [name for action in parser._actions if isinstance(action, argparse._SubParsersAction) for name in action.choices]


def inline_commands(doc: str) -> List[List[str]]:
    """Command lines quoted in the text (`` `python3 examples/17_batch.py` ``). ``visgate NAME``
    alone names a command: it must exist. ``COMMAND`` is a placeholder: that span is left out."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    block = Block(doc, 0, "bash", "\n".join(m for m in _INLINE.findall(text) if "COMMAND" not in m), None)
    return command_lines(block)


@pytest.mark.parametrize("doc", DOCS)
def test_inline_command_lines_parse(doc: str) -> None:
    commands = inline_commands(doc)
    assert commands
    failures = []
    for words in commands:
        if words[0] == "visgate" and len(words) == 2 and not words[1].startswith("-"):
            problem = None if words[1] in _subcommands() else "no such command"
        else:
            with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
                problem = check_command(words)
        if problem:
            failures.append("%s: %s" % (" ".join(words), problem))
    assert not failures, "\n".join(failures)


def test_command_lines_parse() -> None:
    checked = 0
    failures: List[str] = []
    for block in ALL_BLOCKS:
        if block.lang not in ("bash", ""):
            continue
        for words in command_lines(block):
            with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
                problem = check_command(words)
            checked += 1
            if problem:
                failures.append("%s:%d: %s\n  %s %s" % (block.doc, block.line, " ".join(words), problem, err.getvalue().strip()))
    assert not failures, "\n".join(failures)
    assert checked >= 20


# -- paths -------------------------------------------------------------------------------

_PATH = re.compile(r"(?<![\w/.$-])((?:examples|bench|tests|tools|packaging|\.ci)/[\w./-]*\w)")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def mentioned_paths(doc: str) -> List[str]:
    text = (ROOT / doc).read_text(encoding="utf-8")
    paths = set(_PATH.findall(text))
    base = Path(doc).parent
    for link in _LINK.findall(text):
        if not re.match(r"^[a-z]+:", link):
            paths.add(os.path.normpath(str(base / link)))
    return sorted(p for p in paths if "sample_outputs" not in p)


@pytest.mark.parametrize("doc", DOCS)
def test_mentioned_paths_exist(doc: str) -> None:
    paths = mentioned_paths(doc)
    assert paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, "%s mentions paths that do not exist: %s" % (doc, missing)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("doc", DOCS)
def test_anchor_links_resolve(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    in_code = False
    headings = set()
    for line in text.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            headings.add(_slug(line.lstrip("#")))
    anchors = re.findall(r"\]\(#([^)]+)\)", text)
    missing = sorted(set(anchors) - headings)
    assert not missing, "%s links to headings that do not exist: %s" % (doc, missing)
