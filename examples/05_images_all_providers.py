"""Step 05: one image from each provider (Fal, Replicate, Runway) through the same call.

The model for each provider is picked from the catalogue (its cheapest text-to-image model),
so the script keeps working as the catalogue changes. Provider keys from the environment
(VISGATE_FAL_API_KEY, ...) switch that provider to BYOK; without them visgate's keys are used.
"""

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


JOBS = [  # provider, file name, prompt
    ("fal", "sunset_istanbul.png", "Sunset over Istanbul, domes and minarets, golden light, photorealistic"),
    ("replicate", "galata_tower.png", "The Galata Tower at dawn, seagulls, soft mist, photorealistic"),
    ("runway", "bosphorus_night.png", "The Bosphorus Bridge at night, city lights on the water, cinematic"),
]


def main() -> int:
    client = Client(
        fal_key=os.environ.get("VISGATE_FAL_API_KEY"),
        replicate_key=os.environ.get("VISGATE_REPLICATE_API_KEY"),
        runway_key=os.environ.get("VISGATE_RUNWAY_API_KEY"),
    )
    failed = []
    with client:
        for provider, filename, prompt in JOBS:
            mode = "byok" if os.environ.get("VISGATE_%s_API_KEY" % provider.upper()) else "managed"
            try:
                cheapest = client.models.list(provider=provider, media_type="image", capability="text-to-image", sort="cost", limit=1)
                if not cheapest.models:
                    raise VisgateError("the catalogue has no %s text-to-image model" % provider)
                model = cheapest.models[0].id
                result = client.images.generate(model, prompt, width=1024, height=1024)
                path = result.save(os.path.join(OUT_DIR, filename))
            except VisgateError as exc:  # ProviderError, RateLimitError, ...: report and try the next provider
                say("%s: FAILED %s: %s" % (provider, type(exc).__name__, exc))
                failed.append(provider)
                continue
            say("%s: model=%s mode=%s cost=$%.4f cache_hit=%s" % (provider, model, mode, result.cost, result.cache_hit))
            say("  saved %s (%d bytes)" % (filename, os.path.getsize(path)))
    say("images_saved=%d" % (len(JOBS) - len(failed)))
    if failed:
        say("ERROR: no image from %s" % ", ".join(failed), err=True)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
