"""Load provider and visgate keys from a .env file, then run one example or all of them.

    python examples/run_with_env.py                            # all steps (run_all_capabilities.py)
    python examples/run_with_env.py --cheap                    # options go to run_all_capabilities.py
    python examples/run_with_env.py 06_videos_all_providers.py # one example

The file is the repository root's .env, or $VISGATE_ENV_FILE. It holds KEY=value lines;
blank lines and # comments are skipped, `export ` and quotes around values are allowed.
Its values are set in the environment (they win over values already set) and never printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def parse_env_file(path: str) -> Dict[str, str]:
    values: Dict[str, str] = {}
    with open(path, encoding="utf-8-sig") as handle:  # -sig: tolerate a BOM from Windows editors
        for number, raw in enumerate(handle, 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("export "):
                line = line[len("export "):].lstrip()
            name, sep, value = line.partition("=")
            name, value = name.strip(), value.strip()
            if not sep or not name.replace("_", "").isalnum():
                raise ValueError("%s:%d: expected KEY=value" % (path, number))
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            elif " #" in value:  # an unquoted value may end with a comment
                value = value.split(" #", 1)[0].rstrip()
            values[name] = value
    return values


def main(argv: Optional[List[str]] = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    explicit = os.environ.get("VISGATE_ENV_FILE")
    path = explicit or os.path.join(ROOT, ".env")
    if os.path.isfile(path):
        try:
            values = parse_env_file(path)
        except (OSError, ValueError) as exc:
            print("run_with_env: %s" % exc, file=sys.stderr)
            return 2
        os.environ.update(values)
        print("run_with_env: loaded %d variable(s) from %s: %s" % (len(values), path, ", ".join(sorted(values)) or "-"), flush=True)
    elif explicit:
        print("run_with_env: VISGATE_ENV_FILE=%s does not exist" % explicit, file=sys.stderr)
        return 2
    else:
        print("run_with_env: no %s; using the current environment" % path, flush=True)

    # The examples import visgate_sdk from the repository root: no install needed.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p))
    if args and args[0].endswith(".py"):  # one example, its output straight to the terminal
        script = os.path.join(HERE, os.path.basename(args[0]))
        if not os.path.isfile(script):
            print("run_with_env: no example %s" % script, file=sys.stderr)
            return 2
        return subprocess.call([sys.executable, script, *args[1:]], env=env)
    return subprocess.call([sys.executable, os.path.join(HERE, "run_all_capabilities.py"), *args], env=env)


if __name__ == "__main__":
    sys.exit(main())
