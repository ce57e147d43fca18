"""Step 07: what has this key used? Usage totals, the request log and the dashboard."""

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
        usage = client.usage.get(period="month")
        say("usage_period=%s" % usage.period)
        say("usage_total_requests=%d" % usage.total_requests)
        say("usage_successful=%d failed=%d cached=%d" % (usage.successful_requests, usage.failed_requests, usage.cached_requests))
        say("usage_total_billed_cost=%.2f" % usage.total_billed_cost)
        say("usage_total_savings=%.4f cache_hit_rate=%.1f%%" % (usage.total_savings, usage.cache_hit_rate))
        for provider, figures in sorted(usage.by_provider.items()):
            say("  by_provider %s: %s" % (provider, figures))

        logs = client.usage.logs(limit=5)  # newest first; plain dicts, as the API sends them
        say("usage_logs_returned=%d" % len(logs))
        for entry in logs:
            fields = [entry.get(k) for k in ("created_at", "status", "model", "cost", "cache_hit")]
            say("  %s %s %s cost=%s cache_hit=%s" % tuple(fields))

        dashboard = client.usage.dashboard(period="week")
        say("dashboard_total_cost_usd=%.2f" % float(dashboard.get("total_cost_usd") or 0))
        say("dashboard_total_generations=%s" % dashboard.get("total_generations"))

    # Verify: the totals can't be smaller than the log we were just shown.
    if usage.total_requests < len(logs):
        say("ERROR: usage says %d requests but the log shows %d" % (usage.total_requests, len(logs)), err=True)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
