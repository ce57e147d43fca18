"""Step 13: billing, read-only: statistics, account info and the price list."""

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
        stats = client.billing.stats()  # a plain dict: its keys vary between API versions
        say("billing_stats_keys=%s" % ",".join(sorted(stats)))
        say("billing_total_requests=%s total_savings_micro=%s" % (stats.get("total_requests"), stats.get("total_savings_micro")))

        info = client.billing.info()
        say("billing_status=%s tier=%s" % (info.billing_status, info.tier))
        say("balance_micro=%s usage_this_month_cents=%s monthly_budget_cents=%s"
            % (info.balance_micro, info.usage_this_month_cents, info.monthly_budget_cents))

        pricing = client.billing.pricing()
        entries = len(pricing.pricing) if isinstance(pricing.pricing, (list, dict)) else 0
        say("pricing_last_updated=%s pricing_entries=%d" % (pricing.last_updated, entries))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
