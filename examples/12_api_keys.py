"""Step 12: the organization's visgate API keys (listed by prefix; secrets are never returned)."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # a source checkout works without `pip install` (an installed SDK wins)

from visgate_sdk import Client, VisgateError  # noqa: E402

# Everything printed also goes to sample_outputs/out_<script>.txt (VISGATE_SAMPLE_OUTPUTS moves the folder).
OUT_DIR = os.environ.get("VISGATE_SAMPLE_OUTPUTS") or os.path.join(HERE, "sample_outputs")
os.makedirs(OUT_DIR, exist_ok=True)
LOG_PATH = os.path.join(OUT_DIR, "out_%s.txt" % os.path.splitext(os.path.basename(__file__))[0])
with open(LOG_PATH, "w", encoding="utf-8"):  # a fresh log for this run
    pass


def say(line: str = "", err: bool = False) -> None:
    print(line, file=sys.stderr if err else sys.stdout, flush=True)
    with open(LOG_PATH, "a", encoding="utf-8") as log:  # one line at a time: nothing left open
        log.write(line + "\n")


def main() -> int:
    with Client() as client:
        keys = client.api_keys.list()
    say("api_keys_count=%d" % len(keys))
    for key in keys:
        say("  %s name=%r prefix=%s created_at=%s last_used_at=%s" % (key.id, key.name, key.key_prefix, key.created_at, key.last_used_at))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
