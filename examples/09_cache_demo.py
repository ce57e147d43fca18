"""Step 09: the exact cache. The same model + prompt + size twice: the second answer is a cache hit.

A hit comes back in milliseconds and costs nothing; provider_cost_avoided_micro says what it saved.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # a source checkout works without `pip install` (an installed SDK wins)

from visgate_sdk import DEFAULT_MODEL, Client, VisgateError  # noqa: E402

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


PROMPT = "A red tram on Istiklal Avenue in the rain, cinematic, 35mm"


def main() -> int:
    with Client() as client:
        # The first request may already be a hit if this script ran before: only the second is checked.
        for attempt in (1, 2):
            result = client.images.generate(DEFAULT_MODEL, PROMPT, width=1024, height=1024)
            say("request_%d: cache_hit=%s cost=$%.4f latency_ms=%s provider_cost_avoided_micro=%s"
                % (attempt, result.cache_hit, result.cost, result.latency_ms, result.provider_cost_avoided_micro))
        path = result.save(os.path.join(OUT_DIR, "cache_demo.png"))
        say("saved cache_demo.png (%d bytes)" % os.path.getsize(path))
    say("cache_hit=%s" % result.cache_hit)
    if not result.cache_hit:
        say("ERROR: the repeated request was not served from the cache", err=True)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
