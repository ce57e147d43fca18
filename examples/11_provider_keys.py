"""Step 11: your own provider keys (BYOK): list the stored ones, validate the ones in the environment.

Validation asks the provider whether a key works without storing it. Storing and deleting
keys change your account, so this script only does that against the local emulator.
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


ENV_KEYS = (("fal", "VISGATE_FAL_API_KEY"), ("replicate", "VISGATE_REPLICATE_API_KEY"), ("runway", "VISGATE_RUNWAY_API_KEY"))


def main() -> int:
    with Client() as client:
        stored = client.providers.list_keys().keys
        say("provider_keys_stored=%d" % len(stored))
        for key in stored:  # the API only ever returns keys masked
            say("  %s: validated=%s masked_key=%s" % (key.provider, key.validated, key.masked_key))

        for provider, env_name in ENV_KEYS:
            secret = os.environ.get(env_name)
            if not secret:
                say("%s: validate skipped (%s not set)" % (provider, env_name))
                continue
            check = client.providers.validate_key(provider, secret)  # never print the key itself
            say("%s: valid=%s message=%s" % (provider, check.valid, check.message))

        if not client.health().get("emulator"):
            say("set_key/delete_key: skipped (they change your account; run against the emulator to see them)")
            return 0
        entry = client.providers.set_key("fal", "fal_emulator_example_key")
        say("set_key fal: validated=%s masked_key=%s" % (entry.validated, entry.masked_key))
        say("provider_keys_after_set=%d" % len(client.providers.list_keys().keys))
        client.providers.delete_key("fal")
        say("delete_key fal: ok, provider_keys_after_delete=%d" % len(client.providers.list_keys().keys))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except VisgateError as exc:
        say("ERROR %s: %s" % (type(exc).__name__, exc), err=True)
        sys.exit(1)
