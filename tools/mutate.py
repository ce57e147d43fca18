#!/usr/bin/env python3
"""Mutation testing for visgate_sdk.py, with the standard library only.

Each mutant changes one thing in the source (a comparison flipped, ``and`` for ``or``, a ``not``
dropped, a number moved by one or set to 0, ``True`` for ``False``, a returned value made
``None``, a statement of an ``if`` body replaced by ``pass``, ``+`` for ``-``). The test suite
runs against each mutant in a scratch copy of the repository; a mutant the tests notice is
"killed", one they do not is a "survivor": a missing assertion, or code nothing needs.

    python3 tools/mutate.py --list                       # the mutants, nothing run
    python3 tools/mutate.py --sample 60 --seed 1 --jobs 2 --tests "tests/test_client.py tests/test_errors.py"
    python3 tools/mutate.py                              # every mutant against the whole suite (slow)

The report (``--report``, default ``mutation-report.txt``) lists every survivor with its line,
operator and diff. Exit status: 0 when the run finished (whatever the score), 2 when the
unmutated code already fails the selected tests.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import queue
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COPY_IGNORE = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".pytest_cache", ".hypothesis", "dist", "build", "*.egg-info")

FLIP_COMPARE = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
}


@dataclass
class Mutant:
    """One change: replace source[start:end] (byte offsets) by ``replacement``."""

    number: int
    operator: str
    line: int
    start: int
    end: int
    original: str
    replacement: str

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.replacement.encode("utf-8") + source[self.end :]

    def label(self, path: str) -> str:
        return "%s:%d %s: %s -> %s" % (path, self.line, self.operator, _short(self.original), _short(self.replacement))


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 3] + "..."


# -- finding mutants ---------------------------------------------------------------------


class _Finder(ast.NodeVisitor):
    """Collects (operator, node, replacement text, is_expression) for every mutation point."""

    def __init__(self) -> None:
        self.found: List[Tuple[str, ast.AST, str, bool]] = []
        self._skip_depth = 0

    # Code that never runs, or whose mutation says nothing about the tests.
    def _skipped(self, node: ast.AST) -> bool:
        return self._skip_depth > 0

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            return  # typing-only imports
        if isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__":
            return  # the script entry point
        if not self._skipped(node):
            for stmt in node.body:
                if not isinstance(stmt, ast.Pass) and not (len(node.body) == 1 and isinstance(stmt, ast.Expr)):
                    self.found.append(("if-body statement -> pass", stmt, "pass", False))
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        if any(isinstance(d, ast.Name) and d.id == "overload" for d in node.decorator_list):
            return  # typing stubs: never called
        self._visit_body_without_docstring(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._visit_body_without_docstring(node)

    def _visit_body_without_docstring(self, node: ast.AST) -> None:
        for field, value in ast.iter_fields(node):
            if field == "body":
                body = list(value)
                if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant):
                    body = body[1:]
                for stmt in body:
                    self.visit(stmt)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    def visit_Assign(self, node: ast.Assign) -> None:
        names = {t.id for t in node.targets if isinstance(t, ast.Name)}
        if names & {"__all__", "__version__", "__slots__"}:
            return
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        return  # positions inside f-strings are not reliable before 3.12

    def visit_Compare(self, node: ast.Compare) -> None:
        for i, op in enumerate(node.ops):
            flipped = FLIP_COMPARE.get(type(op))
            if flipped is not None:
                ops = list(node.ops)
                ops[i] = flipped()
                new = ast.Compare(left=node.left, ops=ops, comparators=node.comparators)
                self.found.append(("%s -> %s" % (type(op).__name__, flipped.__name__), node, ast.unparse(new), True))
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        other = ast.Or() if isinstance(node.op, ast.And) else ast.And()
        new = ast.BoolOp(op=other, values=node.values)
        self.found.append(("%s -> %s" % (type(node.op).__name__, type(other).__name__), node, ast.unparse(new), True))
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self.found.append(("not removed", node, ast.unparse(node.operand), True))
        if isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return  # -1 is one constant; its digits are mutated as a whole below
        self.generic_visit(node)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        swap = {ast.Add: ast.Sub, ast.Sub: ast.Add}.get(type(node.op))
        if swap is not None and not _is_string(node):
            new = ast.BinOp(left=node.left, op=swap(), right=node.right)
            self.found.append(("%s -> %s" % (type(node.op).__name__, swap.__name__), node, ast.unparse(new), True))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bool):
            self.found.append(("%s -> %s" % (value, not value), node, repr(not value), True))
        elif isinstance(value, (int, float)):
            for name, new in (("+1", value + 1), ("-1", value - 1), ("-> 0", 0)):
                if new != value:
                    self.found.append(("number %s" % name, node, repr(type(value)(new)), True))

    def visit_Return(self, node: ast.Return) -> None:
        if node.value is not None and not (isinstance(node.value, ast.Constant) and node.value.value is None):
            self.found.append(("return value -> None", node, "return None", False))
        self.generic_visit(node)


def _is_string(node: ast.BinOp) -> bool:
    return any(isinstance(side, ast.Constant) and isinstance(side.value, (str, bytes)) for side in (node.left, node.right))


def _offsets(source: bytes) -> List[int]:
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def find_mutants(source: bytes) -> List[Mutant]:
    """Every mutation point, numbered in source order (not yet checked to compile: see ``is_valid``)."""
    tree = ast.parse(source)
    finder = _Finder()
    finder.visit(tree)
    line_starts = _offsets(source)
    mutants: List[Mutant] = []
    seen = set()
    for operator, node, text, is_expr in finder.found:
        start = line_starts[node.lineno - 1] + node.col_offset  # type: ignore[attr-defined]
        end = line_starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[attr-defined]
        replacement = "(%s)" % text if is_expr else text
        key = (start, end, replacement)
        if key in seen:
            continue
        seen.add(key)
        original = source[start:end].decode("utf-8")
        mutants.append(Mutant(len(mutants) + 1, operator, node.lineno, start, end, original, replacement))  # type: ignore[attr-defined]
    return mutants


def is_valid(mutant: Mutant, source: bytes, original_dump: str) -> bool:
    """The mutant compiles and really differs from the original (not just another spelling)."""
    try:
        return ast.dump(ast.parse(mutant.apply(source))) != original_dump
    except SyntaxError:
        return False


def diff(source: bytes, mutant: Mutant, path: str) -> str:
    before = source.decode("utf-8").splitlines(keepends=True)
    after = mutant.apply(source).decode("utf-8").splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, path, path + " (mutant %d)" % mutant.number, n=1))


# -- running the tests -------------------------------------------------------------------


@dataclass
class Outcome:
    mutant: Optional[Mutant]
    status: str  # killed, survived, timeout, error (the baseline) or passed (the baseline)
    seconds: float
    output: str = ""


def run_tests(workdir: str, tests: Sequence[str], limit: float, extra: Sequence[str]) -> Tuple[str, float, str]:
    """(passed | failed | timeout, seconds, last output lines) of one pytest run in ``workdir``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTEST_ADDOPTS") and not k.startswith("VISGATE_")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant of the same size in the same second must not reuse a stale .pyc
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *extra, *tests]
    started = time.monotonic()
    proc = subprocess.Popen(command, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return "timeout", time.monotonic() - started, out.decode("utf-8", "replace")[-2000:]
    status = "passed" if proc.returncode == 0 else "failed"
    return status, time.monotonic() - started, out.decode("utf-8", "replace")[-2000:]


def make_copies(n: int, base: str) -> List[str]:
    copies = []
    for i in range(n):
        dest = os.path.join(base, "repo%d" % i)
        shutil.copytree(ROOT, dest, ignore=COPY_IGNORE)
        copies.append(dest)
    return copies


def run_mutants(
    mutants: Sequence[Mutant], source: bytes, rel_path: str, tests: Sequence[str], jobs: int, limit: Optional[float],
    extra: Sequence[str], progress: bool = True,
) -> Tuple[List[Outcome], float]:
    base = tempfile.mkdtemp(prefix="visgate-mutants-")
    try:
        copies = make_copies(max(1, jobs), base)
        status, seconds, output = run_tests(copies[0], tests, limit or 900.0, extra)
        if status != "passed":
            print("The unmutated code fails the selected tests (%s); fix that first:\n%s" % (status, output), file=sys.stderr)
            raise SystemExit(2)
        per_mutant = limit if limit is not None else max(30.0, 3 * seconds + 10)
        print("baseline: tests pass in %.1fs; %d mutants, %d jobs, %.0fs limit per mutant" % (seconds, len(mutants), jobs, per_mutant))
        free: "queue.Queue[str]" = queue.Queue()
        for copy in copies:
            free.put(copy)
        lock = threading.Lock()
        outcomes: List[Outcome] = []

        def one(mutant: Mutant) -> Outcome:
            workdir = free.get()
            try:
                with open(os.path.join(workdir, rel_path), "wb") as handle:
                    handle.write(mutant.apply(source))
                status, seconds, output = run_tests(workdir, tests, per_mutant, extra)
            finally:
                with open(os.path.join(workdir, rel_path), "wb") as handle:
                    handle.write(source)
                free.put(workdir)
            verdict = {"failed": "killed", "passed": "survived", "timeout": "timeout"}[status]
            outcome = Outcome(mutant, verdict, seconds, output)
            with lock:
                outcomes.append(outcome)
                if progress:
                    print("[%d/%d] %-8s %5.1fs  %s" % (len(outcomes), len(mutants), verdict, seconds, mutant.label(rel_path)), flush=True)
            return outcome

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            list(pool.map(one, mutants))
        return sorted(outcomes, key=lambda o: o.mutant.number if o.mutant else 0), time.monotonic() - started
    finally:
        shutil.rmtree(base, ignore_errors=True)


def summary(outcomes: Sequence[Outcome]) -> Dict[str, int]:
    counts = {"killed": 0, "survived": 0, "timeout": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return counts


def write_report(path: str, outcomes: Sequence[Outcome], source: bytes, rel_path: str, header: str) -> None:
    survivors = [o for o in outcomes if o.status == "survived"]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(header + "\n\n")
        handle.write("%d survivor(s)\n\n" % len(survivors))
        for outcome in survivors:
            assert outcome.mutant is not None
            handle.write("== %s\n" % outcome.mutant.label(rel_path))
            handle.write(diff(source, outcome.mutant, rel_path) + "\n")


# -- command line -------------------------------------------------------------------------


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="visgate_sdk.py", help="file to mutate, relative to the repository (default: %(default)s)")
    parser.add_argument("--tests", default="tests", help='space-separated test paths for pytest (default: "%(default)s")')
    parser.add_argument("--sample", type=int, default=None, help="run N mutants picked at random (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for --sample (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="mutants run in parallel (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per mutant (default: 3x the baseline run + 10)")
    parser.add_argument("--report", default="mutation-report.txt", help="where survivors go (default: %(default)s)")
    parser.add_argument("--pytest-arg", action="append", default=[], help="extra argument for pytest (repeatable)")
    parser.add_argument("--mutant", type=int, action="append", default=[], help="run only mutant N (repeatable; numbers from --list)")
    parser.add_argument("--list", action="store_true", help="print the mutants and exit")
    return parser.parse_args(argv)


def select(mutants: List[Mutant], source: bytes, sample: Optional[int], seed: int) -> List[Mutant]:
    """``sample`` valid mutants at random (all of them without ``sample``), in source order."""
    original_dump = ast.dump(ast.parse(source))
    order = list(mutants)
    if sample is not None:
        random.Random(seed).shuffle(order)
    chosen: List[Mutant] = []
    for mutant in order:
        if sample is not None and len(chosen) >= sample:
            break
        if is_valid(mutant, source, original_dump):
            chosen.append(mutant)
    return sorted(chosen, key=lambda m: m.number)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    rel_path = args.source
    with open(os.path.join(ROOT, rel_path), "rb") as handle:
        source = handle.read()
    mutants = find_mutants(source)
    if args.mutant:
        mutants = [m for m in mutants if m.number in set(args.mutant)]
    chosen = select(mutants, source, args.sample, args.seed)
    if args.list:
        by_operator: Dict[str, int] = {}
        for mutant in mutants:
            by_operator[mutant.operator] = by_operator.get(mutant.operator, 0) + 1
        for mutant in chosen:
            print("%4d  %s" % (mutant.number, mutant.label(rel_path)))
        print("%d mutants: %s" % (len(mutants), ", ".join("%s %d" % kv for kv in sorted(by_operator.items()))), file=sys.stderr)
        return 0
    tests = args.tests.split()
    outcomes, seconds = run_mutants(chosen, source, rel_path, tests, args.jobs, args.timeout, args.pytest_arg)
    counts = summary(outcomes)
    caught = counts["killed"] + counts["timeout"]
    score = 100.0 * caught / len(outcomes) if outcomes else 100.0
    header = (
        "mutation run of %s: %d mutants (of %d; sample=%s, seed=%d), tests: %s\n"
        "killed %d, survived %d, timeout %d; score %.1f%% (killed + timeout over all); %.0fs with %d jobs"
        % (rel_path, len(outcomes), len(mutants), args.sample, args.seed, " ".join(tests),
           counts["killed"], counts["survived"], counts["timeout"], score, seconds, args.jobs)
    )
    write_report(args.report, outcomes, source, rel_path, header)
    print(header)
    print("survivors written to %s" % args.report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
