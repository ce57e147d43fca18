"""Step 16: an assertive smoke test of the whole pipeline; exits non-zero if any check fails.

Checks: health, managed-mode generation with a downloadable image, exact cache hit,
semantic cache hit, async image and async video (202 + polling) with downloadable media.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # a source checkout works without `pip install` (an installed SDK wins)

from visgate_sdk import DEFAULT_MODEL, Client, GenerationRequest, ImageResult, VisgateError  # noqa: E402

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


class CheckFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def saved(client: Client, url: str, name: str) -> int:
    """Download url into the outputs folder; the file's size in bytes."""
    path = client.download(url, os.path.join(OUT_DIR, name))
    return os.path.getsize(path)


def check_health(client: Client) -> str:
    health = client.health()
    expect(health.get("status") == "ok", "status=%r" % health.get("status"))
    return "version=%s" % health.get("version")


def check_managed(client: Client) -> str:
    result = client.generate("Regression smoke: a lighthouse on a rocky coast at dusk")
    expect(result.mode == "managed", "mode=%r" % result.mode)
    expect(bool(result.image_url), "no image_url")
    size = saved(client, result.image_url or "", "16_managed.png")
    expect(size > 0, "empty image")
    return "mode=managed provider=%s bytes=%d" % (result.provider, size)


def generate_twice(client: Client, first: str, second: str) -> ImageResult:
    client.images.generate(DEFAULT_MODEL, first)
    again = client.images.generate(DEFAULT_MODEL, second)
    assert isinstance(again, ImageResult)  # wait=True always gives a result
    return again


def check_exact_cache(client: Client) -> str:
    prompt = "Regression smoke: a teapot on a marble table, studio light"
    again = generate_twice(client, prompt, prompt)
    expect(again.cache_hit, "the repeat was not a cache hit")
    return "cache_hit=True cost=%.4f" % again.cost


def check_semantic_cache(client: Client) -> str:
    again = generate_twice(client, "Regression smoke: blue ceramic bowl with figs", "figs with blue ceramic bowl, regression smoke")
    expect(again.cache_hit, "the similar wording was not a cache hit")
    return "cache_hit=True"


def finish(client: Client, job: object, name: str) -> str:
    """Poll an accepted job to the end and download its output."""
    if not isinstance(job, GenerationRequest):
        raise CheckFailed("expected 202 + request_id, got %s" % type(job).__name__)
    status = client.requests.get(job.request_id, wait=True, timeout=900, poll_interval=1.0)
    expect(status.succeeded, "status=%s error=%s" % (status.status, status.error_message))
    size = saved(client, status.output_url or "", name)
    expect(size > 0, "empty file")
    return "status=%s bytes=%d" % (status.status, size)


def check_async_image(client: Client) -> str:
    job = client.images.generate(DEFAULT_MODEL, "Regression smoke: paper boat, async", wait=False)
    return finish(client, job, "16_async_image.png")


def check_async_video(client: Client) -> str:
    job = client.videos.generate(VIDEO_MODEL, "Regression smoke: waves on a pier, async", wait=False)
    return finish(client, job, "16_async_video.mp4")


CHECKS: List[Callable[[Client], str]] = [
    check_health, check_managed, check_exact_cache, check_semantic_cache, check_async_image, check_async_video,
]


def main() -> int:
    failures = 0
    with Client() as client:  # no provider keys: managed mode
        for check in CHECKS:
            name = check.__name__[len("check_"):]
            try:  # one failing check must not hide the others
                say("PASS %s: %s" % (name, check(client)))
            except (CheckFailed, VisgateError) as exc:
                failures += 1
                say("FAIL %s: %s" % (name, exc))
    say("regression_checks_passed=%d/%d" % (len(CHECKS) - failures, len(CHECKS)))
    if failures:
        say("ERROR: %d regression check(s) failed" % failures, err=True)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
