"""Step 15: long jobs without holding a request open: wait=False (HTTP 202), then poll.

Three ways: handle.wait(); keeping only the request id and resuming with
client.requests.get(id, wait=True) (e.g. from another process); and AsyncClient with asyncio.
"""

from __future__ import annotations

import asyncio
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # a source checkout works without `pip install` (an installed SDK wins)

from visgate_sdk import DEFAULT_MODEL, AsyncClient, AsyncGenerationRequest, Client, GenerationRequest, VisgateError  # noqa: E402

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


VIDEO_MODEL = "fal-ai/flux-pro/video"


def sync_demo() -> bool:
    with Client() as client:
        # 1) Image: the handle polls for you.
        job = client.images.generate(DEFAULT_MODEL, "Tulips in Emirgan Park, morning light", wait=False)
        if not isinstance(job, GenerationRequest):
            raise VisgateError("the server answered synchronously; expected 202 + request_id")
        say("image: accepted request_id=%s status=%s" % (job.request_id, job.status))
        image = job.wait(timeout=300, poll_interval=1.0)
        say("image: status=%s output_url=%s" % (image.status, image.output_url))
        if image.succeeded:
            image.save(os.path.join(OUT_DIR, "15_async_image.png"))

        # 2) Video: keep only the id (a database row, a queue message) and resume from it later.
        video_job = client.videos.generate(VIDEO_MODEL, "Timelapse of clouds over the Maiden's Tower", wait=False)
        if not isinstance(video_job, GenerationRequest):
            raise VisgateError("the server answered synchronously; expected 202 + request_id")
        request_id = video_job.request_id
        first = client.requests.get(request_id)  # one look, no waiting
        say("video: accepted request_id=%s first_poll=%s" % (request_id, first.status))
        video = client.requests.get(request_id, wait=True, timeout=900, poll_interval=1.0)
        say("video: status=%s output_url=%s" % (video.status, video.output_url))
        if video.succeeded:
            video.save(os.path.join(OUT_DIR, "15_async_video.mp4"))
    return image.succeeded and video.succeeded


async def async_demo() -> bool:
    # AsyncClient: the same API as coroutines; submit two jobs, then wait for both together.
    async with AsyncClient() as client:
        prompts = ["Simit seller on a ferry, watercolor", "Simit seller on a ferry, pencil sketch"]
        answers = await asyncio.gather(*(client.images.generate(DEFAULT_MODEL, p, wait=False) for p in prompts))
        jobs = [a for a in answers if isinstance(a, AsyncGenerationRequest)]
        if len(jobs) != len(answers):
            raise VisgateError("the server answered synchronously; expected 202 + request_id")
        results = await asyncio.gather(*(j.wait(timeout=300, poll_interval=1.0) for j in jobs))
    for job, result in zip(jobs, results):
        say("async: request_id=%s status=%s" % (job.request_id, result.status))
    return all(r.succeeded for r in results)


def main() -> int:
    ok = sync_demo()
    ok = asyncio.run(async_demo()) and ok
    say("async_generation_ok=%s" % str(ok).lower())
    if not ok:
        say("ERROR: a job did not complete", err=True)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
