"""Step 17: a batch of 20 prompts with a spending cap, then the same batch again: nothing billed twice.

client.generate_many() runs the prompts 8 at a time and gives one entry per prompt, in order: the
result or the typed error. Each item's Idempotency-Key comes from the batch id, its index and its
arguments, so rerunning the batch (after a crash, say) replays what was done instead of paying
again. budget_usd stops starting new items once the batch has cost that much.
"""

from __future__ import annotations

import os
import sys
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # a source checkout works without `pip install` (an installed SDK wins)

from visgate_sdk import BatchResult, Client, VisgateError  # noqa: E402

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


SUBJECTS = ["tram", "ferry", "minaret", "bazaar", "lighthouse", "bridge", "tower", "harbour", "cat", "seagull",
            "market", "palace", "fountain", "garden", "street", "rooftop", "mosaic", "lantern", "teapot", "carpet"]
PROMPTS = ["An Istanbul %s at dusk, watercolour, detailed" % subject for subject in SUBJECTS]
BUDGET_USD = 0.25  # the cap for this batch: items not started once it is spent are reported, not run


def usage_line(client: Client, label: str) -> int:
    usage = client.usage.get("day")
    say("usage %s: requests=%d billed=$%.4f" % (label, usage.total_requests, usage.total_billed_cost))
    return usage.total_requests


def run(client: Client, batch_id: str, label: str) -> BatchResult:
    batch = client.iter_generate_many(PROMPTS, batch_id=batch_id, budget_usd=BUDGET_USD, max_concurrency=8)
    for landed, (index, outcome) in enumerate(batch, 1):
        shown = "error %s" % outcome.error_code if isinstance(outcome, VisgateError) else "cost=$%.4f" % outcome.cost
        say("  %s %2d/%d: item %02d %s" % (label, landed, len(PROMPTS), index, shown))
    result = batch.result
    say("%s: succeeded=%d failed=%d not_run=%d reported_cost=$%.4f"
        % (label, len(result.succeeded), len(result.failed), len(result.not_run), result.cost))
    return result


def main() -> int:
    batch_id = "example-17-" + uuid.uuid4().hex[:8]  # new each time this script runs; reuse it to resume
    say("batch_id=%s prompts=%d budget_usd=%.2f" % (batch_id, len(PROMPTS), BUDGET_USD))
    with Client() as client:
        before = usage_line(client, "before")
        first = run(client, batch_id, "run 1")
        after_first = usage_line(client, "after run 1")
        if first.succeeded:
            first[first.succeeded[0]].save(os.path.join(OUT_DIR, "17_batch_first.png"))
            say("saved 17_batch_first.png")
        second = run(client, batch_id, "run 2 (same batch_id)")
        say("(run 2's results are the stored answers of run 1: they report what they cost then; usage shows the truth)")
        after_second = usage_line(client, "after run 2")
    redone = len(first) - len(first.succeeded)  # only what run 1 did not finish may be sent again
    say("run 1 new requests=%d, run 2 new requests=%d (at most %d expected)"
        % (after_first - before, after_second - after_first, redone))
    billed_twice = max(0, (after_second - after_first) - redone)
    say("billed_twice=%d" % billed_twice)
    if billed_twice or len(second.succeeded) < len(first.succeeded):
        say("ERROR: the rerun was billed again or lost results", err=True)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
