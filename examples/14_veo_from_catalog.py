"""Step 14: find Google's Veo in the catalogue, generate a video with it, write istanbul.mp4.

Searching instead of hard-coding the id keeps this working when the catalogue renames models.
"""

from __future__ import annotations

import os
import sys

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


PROMPT = "Cinematic drone over Istanbul at golden hour, Bosphorus and minarets"


def main() -> int:
    with Client() as client:
        found = client.models.search("veo", limit=20)
        veo = [m for m in found.models if m.media_type == "video" and "veo" in m.id.lower()]
        say("catalogue search 'veo': %d matches, %d Veo video models" % (found.total_count, len(veo)))
        if not veo:
            say("ERROR: no Veo video model in the catalogue", err=True)
            return 1
        model = veo[0]
        say("veo_model=%s (%s, provider=%s)" % (model.id, model.name, model.provider))

        # Video takes minutes: submit (202), then poll. A server may also answer at once.
        job = client.videos.generate(model.id, PROMPT, duration_seconds=5.0, wait=False)
        if isinstance(job, GenerationRequest):
            say("submitted request_id=%s" % job.request_id)
            status = job.wait(timeout=900, poll_interval=1.0)
            say("status=%s" % status.status)
            if not status.succeeded:
                say("ERROR: the video failed: %s" % status.error_message, err=True)
                return 1
            path = status.save(os.path.join(OUT_DIR, "istanbul.mp4"))
        else:
            path = job.save(os.path.join(OUT_DIR, "istanbul.mp4"))
    say("saved istanbul.mp4 (%d bytes)" % os.path.getsize(path))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
