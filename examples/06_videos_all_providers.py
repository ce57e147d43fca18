"""Step 06: one video from each provider (Fal, Replicate, Runway).

Video takes minutes, longer than proxies keep a request open. So all three jobs are submitted
at once with wait=False (the API answers 202 with a request id) and then polled to the end.
"""

from __future__ import annotations

import os
import sys
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # a source checkout works without `pip install` (an installed SDK wins)

from visgate_sdk import Client, GenerationRequest, VisgateError  # noqa: E402

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


PROMPT = "Cinematic drone shot over the Bosphorus at golden hour, ferries crossing, minarets"


def main() -> int:
    client = Client(
        fal_key=os.environ.get("VISGATE_FAL_API_KEY"),
        replicate_key=os.environ.get("VISGATE_REPLICATE_API_KEY"),
        runway_key=os.environ.get("VISGATE_RUNWAY_API_KEY"),
    )
    video_urls: List[str] = []
    failed = []
    with client:
        # 1) Submit: the cheapest text-to-video model of each provider, all jobs at once.
        jobs = []
        for provider in ("fal", "replicate", "runway"):
            found = client.models.list(provider=provider, media_type="video", capability="text-to-video", sort="cost", limit=1)
            if not found.models:
                say("%s: FAILED: no text-to-video model in the catalogue" % provider)
                failed.append(provider)
                continue
            model = found.models[0].id
            job = client.videos.generate(model, PROMPT, duration_seconds=5.0, wait=False)
            say("%s: submitted model=%s" % (provider, model))
            jobs.append((provider, job))

        # 2) Wait for each. A server may also answer at once (a VideoResult): both are handled.
        for provider, job in jobs:
            if isinstance(job, GenerationRequest):
                status = job.wait(timeout=900, poll_interval=1.0)
                if not status.succeeded:
                    say("%s: FAILED status=%s error=%s" % (provider, status.status, status.error_message))
                    failed.append(provider)
                    continue
                url = status.output_url
            else:
                url = job.video_url
            say("%s: completed video_url=%s" % (provider, url))
            if url:
                video_urls.append(url)

        if video_urls:  # keep one sample; the others stay at their URLs
            path = client.download(video_urls[0], os.path.join(OUT_DIR, "06_videos_sample.mp4"))
            say("saved 06_videos_sample.mp4 (%d bytes)" % os.path.getsize(path))
    say("videos_completed=%d" % len(video_urls))
    if failed:
        say("ERROR: no video from %s" % ", ".join(failed), err=True)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
