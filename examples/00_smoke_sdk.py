"""Step 00: the SDK imports and builds its clients. No network, no API key needed."""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.append(os.path.dirname(HERE))  # a source checkout works without `pip install` (an installed SDK wins)

import visgate_sdk  # noqa: E402
from visgate_sdk import AsyncClient, Client, ValidationError, VisgateError  # noqa: E402

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


RESOURCES = ("images", "videos", "requests", "models", "usage", "providers", "auth", "api_keys", "billing")


def main() -> int:
    say("visgate_sdk_version=%s" % visgate_sdk.__version__)
    # Building a client opens no connection: this step runs offline.
    client = Client()  # reads VISGATE_API_KEY and VISGATE_BASE_URL if set
    say("base_url=%s" % client.base_url)
    say("api_key_set=%s" % bool(client.api_key))  # never print the key itself
    say("timeout=%s max_retries=%d" % (client.timeout, client.max_retries))
    for name in RESOURCES:
        methods = [m for m in dir(getattr(client, name)) if not m.startswith("_")]
        say("resource %-9s %s" % (name, ", ".join(sorted(methods))))
    client.close()

    # The async client mirrors the sync one, resource for resource.
    async_client = AsyncClient()
    missing = [name for name in RESOURCES if not hasattr(async_client, name)]
    say("async_client_resources=%d" % (len(RESOURCES) - len(missing)))

    # Bad arguments fail before anything is sent, with a typed error.
    try:
        Client(base_url="ftp://example.com")
    except ValidationError as exc:
        say("validation_error_ok=True field=%s" % exc.field)

    from visgate_sdk.exceptions import AuthenticationError, ProviderError, RateLimitError

    say("exceptions_ok=%s" % all(issubclass(e, VisgateError) for e in (AuthenticationError, ProviderError, RateLimitError)))
    if missing:
        say("ERROR: AsyncClient lacks %s" % ", ".join(missing), err=True)
        return 1
    say("sdk_resources=%d" % len(RESOURCES))
    say("OK SDK smoke (no network)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
