"""Step 10: the semantic cache. A prompt worded differently but meaning the same can hit the cache.

The live API matches similar prompts by embedding, so whether a given rewording hits is its call;
this demo reports what happened and fails only on errors. (The emulator matches the same words
in any order or case.) include_steps=True shows the pipeline: which cache match, if any.
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # a source checkout works without `pip install` (an installed SDK wins)

from visgate_sdk import DEFAULT_MODEL, Client, ImageResult, VisgateError  # noqa: E402

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


EXACT = "A cinematic view of Istanbul Bosphorus, detailed, photorealistic"
SIMILAR = "photorealistic, detailed: a cinematic view of Istanbul Bosphorus"


def cache_step(result: ImageResult) -> str:
    """The 'cache' step of the pipeline, e.g. 'hit (semantic)', if the API sent steps."""
    for step in result.steps or []:
        if step.get("name") == "cache":
            return "%s (%s)" % (step.get("status"), step.get("match")) if step.get("match") else str(step.get("status"))
    return "n/a"


def main() -> int:
    with Client() as client:
        exact = client.images.generate(DEFAULT_MODEL, EXACT, include_steps=True)
        say("exact:   %r cache_hit=%s cost=$%.4f cache_step=%s" % (EXACT, exact.cache_hit, exact.cost, cache_step(exact)))
        exact.save(os.path.join(OUT_DIR, "semantic_exact.png"))

        similar = client.images.generate(DEFAULT_MODEL, SIMILAR, include_steps=True)
        say("similar: %r cache_hit=%s cost=$%.4f cache_step=%s" % (SIMILAR, similar.cache_hit, similar.cost, cache_step(similar)))
        similar.save(os.path.join(OUT_DIR, "semantic_similar.png"))
    say("saved semantic_exact.png semantic_similar.png")
    say("semantic_cache_hit=%s" % similar.cache_hit)
    if not similar.cache_hit:
        say("note: no semantic hit this time (the API decides what counts as similar)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
