"""Where the time goes when visgate_sdk.py is compiled from source (an import with no bytecode).

    python3 bench/compile_profile.py [--file visgate_sdk.py] [--repeat 15]

Prints three tables (times are CPU time, the fastest of --repeat runs in this process:
on a shared machine that is the stable figure, wall-clock medians drift with the load):

1. The whole file: ``compile(source, "visgate_sdk.py", "exec")``; next to it
   what an import with bytecode pays instead (``marshal.loads`` of the code
   object) and the execution of the module body, which both kinds of import pay.
   (No parse/code-generation split: ``ast.parse`` builds Python AST objects the
   real compile never makes, so it takes longer than the whole compile.)
2. Each top-level section between the ``###`` banners compiled on its own (with
   the file's ``from __future__ import annotations``, so annotations cost what
   they cost in the file); the shares add up to about the whole.
3. What removing one kind of code would save: the whole file is compiled again
   with every docstring, the ``if TYPE_CHECKING:`` blocks, the ``@overload``
   stubs, the command line, or comments and blank lines taken out (each replaced
   by ``pass`` where a statement is needed). The kinds overlap (the overload stubs
   inside ``if TYPE_CHECKING:``, docstrings everywhere), so these do not add up.
   ``python -OO`` drops docstrings from the bytecode, but still compiles them.
   Two figures: the time measured (the median of --blocks A/B blocks, with their
   range), and an estimate from the tokens taken out at the whole file's time per
   token (steadier on a loaded machine); a last row times the file against itself.

Standard library only; it never writes bytecode and does not change the file.
"""
from __future__ import annotations

import argparse
import ast
import io
import marshal
import os
import re
import statistics
import sys
import time
import tokenize
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BANNER = re.compile(rb"^#{20,}\s*$")
TITLE = re.compile(rb"^# (.+?) #+\s*$")


def timed(*fns, repeat: int) -> list:
    """The fastest of ``repeat`` calls of each of ``fns``, in CPU seconds of this process (time
    waiting for a core on a busy machine is left out); the calls are interleaved (a, b, a, b, ...)
    so that a change in the machine's load hits all of them alike."""
    best = [float("inf")] * len(fns)
    for fn in fns:
        fn()  # warm-up
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            t0 = time.process_time()
            fn()
            best[i] = min(best[i], time.process_time() - t0)
    return best


def compile_times(*sources: bytes, name: str, repeat: int) -> list:
    return timed(*(lambda s=s: compile(s, name, "exec", dont_inherit=True) for s in sources), repeat=repeat)


def sections(lines: list) -> list:
    """[(title, first line index, end line index)] split at the ``###`` banners."""
    starts = [("Preamble: module docstring, imports, __all__, typing-only block", 0)]
    for i in range(len(lines) - 2):
        title = TITLE.match(lines[i + 1])
        if BANNER.match(lines[i]) and title and BANNER.match(lines[i + 2]):
            starts.append((title.group(1).decode("utf-8").strip(" #"), i))
    return [(title, first, starts[k + 1][1] if k + 1 < len(starts) else len(lines))
            for k, (title, first) in enumerate(starts)]


# Kinds of code to take out. Each finder yields (start line, start col, end line, end col, replacement)
# spans of statements (lines 1-based, columns in UTF-8 bytes as ast gives them).


def _span(node: ast.stmt, replacement: bytes = b"pass") -> tuple:
    decorators = getattr(node, "decorator_list", None)
    first = decorators[0].lineno if decorators else node.lineno  # "@" sits in the def's column
    return first, node.col_offset, node.end_lineno, node.end_col_offset, replacement


def find_docstrings(tree: ast.Module) -> list:
    spans = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                # The module's docstring goes without a trace: ``pass`` would come before ``from __future__``.
                spans.append(_span(first, b"" if isinstance(node, ast.Module) else b"pass"))
    return spans


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def find_type_checking(tree: ast.Module) -> list:
    """``if TYPE_CHECKING:`` blocks with no ``else`` (the ``if not TYPE_CHECKING:`` ones run)."""
    return [_span(node) for node in ast.walk(tree)
            if isinstance(node, ast.If) and _is_type_checking(node.test) and not node.orelse]


def _is_overload(decorator: ast.expr) -> bool:
    return (isinstance(decorator, ast.Name) and decorator.id in ("overload", "_overload")) or (
        isinstance(decorator, ast.Attribute) and decorator.attr == "overload")


def find_overloads(tree: ast.Module) -> list:
    return [_span(node) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(map(_is_overload, node.decorator_list))]


def find_cli(tree: ast.Module) -> list:
    """The command line: top-level ``_cli*`` functions and constants, ``main`` and the ``__main__`` guard."""
    spans = []
    for node in tree.body:
        name = getattr(node, "name", None)
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
        is_cli = name is not None and (name.startswith(("_cli", "_CLI")) or name == "main")
        is_main_guard = isinstance(node, ast.If) and "__main__" in ast.dump(node.test)
        if is_cli or is_main_guard:
            spans.append(_span(node))
    return spans


def strip(source: bytes, spans: list) -> bytes:
    """Replace each span with its replacement (spans nested in another are dropped)."""
    lines = source.splitlines(keepends=True)
    outer: list = []
    for span in sorted(spans):
        if outer and (span[0], span[1]) < (outer[-1][2], outer[-1][3]):
            continue  # inside the previous span
        outer.append(span)
    for first, col, last, end_col, replacement in reversed(outer):
        head, tail = lines[first - 1][:col], lines[last - 1][end_col:]
        lines[first - 1:last] = [head + replacement + tail]
    return b"".join(lines)


def strip_comments_and_blank_lines(source: bytes) -> bytes:
    """Drop comments and lines holding only whitespace (outside strings), as the tokenizer sees them."""
    comments = [(tok.start, tok.end) for tok in tokenize.tokenize(io.BytesIO(source).readline)
                if tok.type == tokenize.COMMENT]
    lines = source.splitlines(keepends=True)
    for (row, col), (_, end) in reversed(comments):  # tokenize columns are characters, not bytes
        text = lines[row - 1].decode("utf-8")
        lines[row - 1] = (text[:col].rstrip() + text[end:]).encode("utf-8")
    in_string: set = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.end_lineno and node.end_lineno > node.lineno:
            in_string.update(range(node.lineno + 1, node.end_lineno + 1))
    return b"".join(line for n, line in enumerate(lines, 1) if n in in_string or line.strip())


def tokens(source: bytes) -> int:
    """Tokens the parser sees (comments and blank lines excluded): compile time follows this, not bytes."""
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING}
    return sum(tok.type not in skip for tok in tokenize.tokenize(io.BytesIO(source).readline))


def run_module(code: types.CodeType, path: str) -> None:
    """Execute the module body as an import would, under a throwaway name."""
    name = "_visgate_compile_profile"
    module = types.ModuleType(name)
    module.__file__ = path
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)
    finally:
        for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
            del sys.modules[key]


def table(header: list, rows: list) -> str:
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(len(header))]
    just = [str.ljust] + [str.rjust] * (len(header) - 1)
    lines = ["| " + " | ".join(j(str(c), w) for c, w, j in zip(r, widths, just)) + " |" for r in [header, *rows]]
    lines.insert(1, "|" + "|".join("-" * (w + 1) + (":" if i else "-") for i, w in enumerate(widths)) + "|")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default=os.path.join(ROOT, "visgate_sdk.py"))
    parser.add_argument("--repeat", type=int, default=30, help="timed compiles per measurement (fastest)")
    parser.add_argument("--blocks", type=int, default=5, help="repeated A/B blocks per kind of code taken out")
    args = parser.parse_args()
    sys.dont_write_bytecode = True

    with open(args.file, "rb") as f:
        source = f.read()
    name, rep = os.path.basename(args.file), args.repeat
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    code = compile(source, name, "exec", dont_inherit=True)

    pyc = marshal.dumps(code)
    whole, load = timed(lambda: compile(source, name, "exec", dont_inherit=True), lambda: marshal.loads(pyc),
                        repeat=rep)
    (execute,) = timed(lambda: run_module(code, args.file), repeat=max(5, rep // 3))
    ms = lambda s: f"{s * 1000:.2f}"  # noqa: E731
    pct = lambda s: f"{100 * s / whole:.0f}%"  # noqa: E731
    print(f"# Compile profile of {name}: {len(source)} bytes, {len(lines)} lines; "
          f"Python {sys.version.split()[0]}; fastest of {rep}\n")
    print(table(["step", "ms", "share of compile"], [
        ["compile(source) total: what an import with no bytecode adds", ms(whole), "100%"],
        ["marshal.loads of the bytecode (what a .pyc import pays instead)", ms(load), pct(load)],
        ["exec of the module body, its stdlib imports already loaded (any import)", ms(execute), pct(execute)],
    ]))

    future = b"from __future__ import annotations\n"
    parts = sections(lines)
    chunks = [b"".join(lines[first:end]) for _, first, end in parts]
    # The whole file is timed again in the same interleaved run, so the shares compare like with like.
    whole, *times = compile_times(source, *(c if i == 0 else future + c for i, c in enumerate(chunks)),
                                  name=name, repeat=rep)
    rows, total = [], sum(times)
    for (title, first, end), chunk, t in zip(parts, chunks, times):
        rows.append([title, f"{first + 1}-{end}", end - first, len(chunk), tokens(chunk), ms(t), pct(t)])
    n_tokens = tokens(source)
    rows.append(["sum of the sections", "", len(lines), len(source), "", ms(total), pct(total)])
    rows.append(["the whole file at once (same run)", "", len(lines), len(source), n_tokens, ms(whole), "100%"])
    print("\n## Compile time by section (each compiled alone)\n")
    print(table(["section", "lines", "n lines", "bytes", "tokens", "ms", "share"], rows))

    rows = []
    variants: list = []  # (label, span count or "", stripped source)
    kinds = [("docstrings (module, classes, functions)", find_docstrings(tree)),
             ("`if TYPE_CHECKING:` blocks", find_type_checking(tree)),
             ("`@overload` stubs", find_overloads(tree)),
             ("command line (`_cli*`, `main`, `__main__` guard)", find_cli(tree))]
    for label, spans in kinds:
        variants.append((label, len(spans), strip(source, spans)))
    variants.append(("comments and blank lines", "", strip_comments_and_blank_lines(source)))
    variants.append(("nothing (the file against itself: the noise floor)", "", source))
    per_token = whole / n_tokens
    for label, items, stripped in variants:
        compile(stripped, name, "exec", dont_inherit=True)  # still valid Python
        # Several blocks of interleaved timings; the saving is the median block's, the range shows the noise.
        savings = []
        for _ in range(args.blocks):
            base, cut = compile_times(source, stripped, name=name, repeat=max(5, rep // 3))
            savings.append(base - cut)
        saved, fewer = statistics.median(savings), n_tokens - tokens(stripped)
        rows.append([label, items, len(lines) - len(stripped.splitlines()), len(source) - len(stripped),
                     fewer, ms(fewer * per_token), ms(saved), f"{ms(min(savings))} to {ms(max(savings))}",
                     f"{100 * saved / whole:.0f}%"])
    print("\n## What taking one kind of code out would save (kinds overlap)\n")
    print(table(["taken out", "items", "lines", "bytes", "tokens", "ms by tokens", "saves ms", "range", "share"],
                rows))
    print(f"\n(ms by tokens: the tokens taken out x {per_token * 1e6:.2f} us, the whole file's compile time"
          f" per token. saves ms: measured, the whole file against the stripped one interleaved, the median"
          f" of {args.blocks} blocks; range: the lowest and highest block.)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
