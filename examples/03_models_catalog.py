"""Step 03: browse the model catalogue: list with filters, search, get one model."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # a source checkout works without `pip install` (an installed SDK wins)

from visgate_sdk import DEFAULT_MODEL, Client, NotFoundError, VisgateError  # noqa: E402

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
        # Filters: provider, media_type, capability, sort. total_count counts every match, not just this page.
        page = client.models.list(provider="fal", media_type="image", limit=5)
        say("fal image models: %d shown, total=%d" % (len(page.models), page.total_count))
        for m in page.models:
            say("  %-40s %s" % (m.id, m.name))

        videos = client.models.list(media_type="video", sort="popular", limit=5)
        say("popular video models: %d shown, total=%d" % (len(videos.models), videos.total_count))
        for m in videos.models:
            say("  %-40s provider=%s runs=%d" % (m.id, m.provider, m.run_count))

        found = client.models.search("flux", limit=5)
        say("search 'flux': %d shown, total=%d" % (len(found.models), found.total_count))

        # Model ids keep their slashes: fal-ai/flux/schnell is GET /models/fal-ai/flux/schnell.
        model = client.models.get(DEFAULT_MODEL)
        say("get %s: name=%s provider=%s media_type=%s" % (model.id, model.name, model.provider, model.media_type))
        capabilities = ",".join(model.capabilities)
        say("  pricing_unit=%s base_cost_micro=%d capabilities=%s" % (model.pricing_unit, model.base_cost_micro, capabilities))

        try:
            client.models.get("visgate-examples/no-such-model")
        except NotFoundError as exc:
            say("unknown model -> NotFoundError [%s]" % exc.error_code)

    if not page.models or model.id != DEFAULT_MODEL:
        say("ERROR: the catalogue did not return the expected models", err=True)
        return 1
    say("models_catalog_ok=true")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
