"""Step 04: one-call generation with client.generate(): managed keys, then your own key (BYOK).

Managed mode uses visgate's provider accounts. BYOK sends your Fal key with each request
(set VISGATE_FAL_API_KEY); visgate routes, caches and logs, the provider bills you.
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


def main() -> int:
    with Client() as client:
        # Managed: no provider key, visgate's own accounts do the work.
        result = client.generate("A sunset over Istanbul, the Galata Tower in silhouette", model=DEFAULT_MODEL)
        say("managed: mode=%s provider=%s model=%s" % (result.mode, result.provider, result.model))
        say("  cost=$%.4f latency_ms=%d resolution=%s" % (result.cost, result.latency_ms, result.resolution))
        path = result.save(os.path.join(OUT_DIR, "generate_unified.png"))
        say("  image_url=%s" % result.image_url)
        say("  saved %s (%d bytes)" % (os.path.basename(path), os.path.getsize(path)))

        # BYOK on the same client: set_provider_headers() replaces the keys sent from now on.
        fal_key = os.environ.get("VISGATE_FAL_API_KEY")
        if not fal_key:
            say("byok: skipped (set VISGATE_FAL_API_KEY to generate with your own Fal key)")
        else:
            client.set_provider_headers(fal_key=fal_key)
            byok = client.generate("A sunset over Istanbul with your own Fal key, ferries on the Bosphorus")
            say("byok: mode=%s provider=%s cost=$%.4f (visgate fee only; Fal bills you)" % (byok.mode, byok.provider, byok.cost))
            client.set_provider_headers()  # no keys: back to managed mode

    if not result.image_url or os.path.getsize(path) == 0:
        say("ERROR: no image came back", err=True)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
