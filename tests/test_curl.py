"""Errors you can paste: every error from a call says which request failed (``method``, ``url``,
``attempts``, ``elapsed``) and ``to_curl()`` repeats it with keys as shell variables.

Each command is always checked by parsing it with ``shlex.split``; where ``curl`` is installed it
is also run against the same loopback server, and what the server saw is compared.
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import shutil
import subprocess
import time
from typing import Any, Dict, List

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import visgate_sdk
from tests._servers import RawServer, RefusedPort, sleep_until_stopped
from visgate_sdk import (
    Client,
    ConnectionError,
    DownloadError,
    NotFoundError,
    Retry,
    ServerError,
    TimeoutError,
    ValidationError,
    VisgateError,
)

KEY = "vg-curl-test-key-7f3a9c1e5b"
FAL = "fal-curl-byok-4e2d8a"
REPLICATE = "r8_curl-byok-9b1c"
RUNWAY = "rw-curl-byok-6a0f"
PROVIDER_KEY = "fal-stored-key-3c5e7a9b"
SECRETS = (KEY, FAL, REPLICATE, RUNWAY, PROVIDER_KEY)


def make(server: HTTPServer, retries: int = 0, **kwargs: Any) -> Client:
    kwargs.setdefault("api_key", KEY)
    return Client(base_url=server.url_for("/api/v1"), max_retries=Retry(total=retries, backoff_factor=0.001), **kwargs)


def parse(command: str) -> Dict[str, Any]:
    """The curl command as data: method, url, headers (name -> value) and body."""
    words = shlex.split(command)
    assert words[:2] == ["curl", "-X"], command
    parsed: Dict[str, Any] = {"method": words[2], "url": words[3], "headers": {}, "body": None}
    rest = words[4:]
    while rest:
        flag, value, rest = rest[0], rest[1], rest[2:]
        if flag == "-H":
            name, _, text = value.partition(": ")
            parsed["headers"][name] = text
        else:
            assert flag == "--data-raw", command
            parsed["body"] = value
    return parsed


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def run_curl(command: str, server: HTTPServer) -> List[Request]:
    """Run ``command`` with the keys in the environment (only when curl exists); what the server saw."""
    before = len(server.log)
    env = {"PATH": os.environ.get("PATH", ""), "VISGATE_API_KEY": KEY, "VISGATE_FAL_API_KEY": FAL,
           "VISGATE_REPLICATE_API_KEY": REPLICATE, "VISGATE_RUNWAY_API_KEY": RUNWAY}
    subprocess.run(["sh", "-c", command + " --noproxy '*' -s -o /dev/null --max-time 10"], env=env, timeout=20, check=False)
    return [req for req, _resp in server.log[before:]]


# -- what an error from a call carries ----------------------------------------------------


def test_http_error_says_which_request_failed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/models/nope").respond_with_json({"error": "NOT_FOUND", "message": "no"}, status=404)
    with pytest.raises(NotFoundError) as info:
        make(httpserver).models.get("nope")
    err = info.value
    assert (err.method, err.url, err.attempts) == ("GET", httpserver.url_for("/api/v1/models/nope"), 1)
    assert err.elapsed is not None and 0 <= err.elapsed < 5


def test_attempts_count_the_retries(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"error": "DOWN"}, status=503)
    with pytest.raises(ServerError) as info:
        make(httpserver, retries=2).health()
    assert info.value.attempts == 3 and len(httpserver.log) == 3


def test_network_error_carries_the_request() -> None:
    refused = RefusedPort()
    try:
        url = "http://127.0.0.1:%d/api/v1" % refused.port
        client = Client(api_key=KEY, base_url=url, max_retries=Retry(total=1, backoff_factor=0.001))
        with pytest.raises(ConnectionError) as info:
            client.auth.me()
    finally:
        refused.close()
    err = info.value
    assert (err.method, err.url, err.attempts) == ("GET", url + "/auth/me", 2)
    assert err.elapsed is not None
    assert parse(err.to_curl())["url"] == url + "/auth/me"
    assert_no_secret(err.to_curl(), str(err), repr(err))


def test_timeout_carries_the_request() -> None:
    with RawServer(lambda conn, server: sleep_until_stopped(server, 10)) as server:
        client = Client(api_key=KEY, base_url=server.url(), timeout=0.2, max_retries=0)
        started = time.monotonic()
        with pytest.raises(TimeoutError) as info:
            client.usage.get()
        assert time.monotonic() - started < 5
    err = info.value
    assert err.method == "GET" and err.url == server.url() + "/usage?period=month" and err.attempts == 1
    assert err.elapsed is not None and err.elapsed >= 0.15
    assert parse(err.to_curl())["headers"]["Authorization"] == "Bearer $VISGATE_API_KEY"


def test_download_error_carries_the_request_and_no_key(httpserver: HTTPServer, tmp_path: Any) -> None:
    httpserver.expect_request("/media/x.png").respond_with_data(b"gone", status=404)
    url = httpserver.url_for("/media/x.png")
    with pytest.raises(DownloadError) as info:
        make(httpserver, fal_key=FAL).download(url, str(tmp_path / "x.png"))
    err = info.value
    assert (err.method, err.url, err.attempts, err.status_code) == ("GET", url, 1, 404)
    parsed = parse(err.to_curl())
    assert parsed["url"] == url and "Authorization" not in parsed["headers"]
    assert_no_secret(err.to_curl())


# -- the curl command ----------------------------------------------------------------------


def test_curl_reproduces_a_post_with_json_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/images/generate").respond_with_json({"error": "BAD", "message": "bad size"}, status=400)
    client = make(httpserver, fal_key=FAL, replicate_key=REPLICATE, runway_key=RUNWAY)
    with pytest.raises(ValidationError) as info:
        traceparent = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        client.images.generate("fal-ai/flux/schnell", "a cat's \"hat\" $(id) `id`", width=512, headers={"traceparent": traceparent})
    command = info.value.to_curl()
    assert_no_secret(command, str(info.value), repr(info.value))
    parsed = parse(command)
    sent = httpserver.log[0][0]
    assert parsed["method"] == "POST" and parsed["url"] == httpserver.url_for("/api/v1/images/generate")
    assert json.loads(parsed["body"]) == json.loads(sent.get_data())
    assert parsed["headers"]["Authorization"] == "Bearer $VISGATE_API_KEY"
    assert parsed["headers"]["X-Fal-Key"] == "$VISGATE_FAL_API_KEY"
    assert parsed["headers"]["X-Replicate-Key"] == "$VISGATE_REPLICATE_API_KEY"
    assert parsed["headers"]["X-Runway-Key"] == "$VISGATE_RUNWAY_API_KEY"
    for name in ("Idempotency-Key", "Content-Type", "traceparent", "User-Agent"):
        assert parsed["headers"][name] == sent.headers[name]
    if shutil.which("curl"):  # the real thing too: the shell fills in the keys, nothing else expands
        (again,) = run_curl(command, httpserver)
        assert again.method == "POST" and json.loads(again.get_data()) == json.loads(sent.get_data())
        for name in ("Authorization", "X-Fal-Key", "X-Replicate-Key", "X-Runway-Key", "Idempotency-Key", "traceparent"):
            assert again.headers[name] == sent.headers[name]


def test_curl_quotes_what_the_shell_would_expand(httpserver: HTTPServer, tmp_path: Any) -> None:
    marker = tmp_path / "pwned"
    httpserver.expect_request("/api/v1/health").respond_with_json({"error": "DOWN"}, status=500)
    nasty = "$(touch %s) `touch %s` $HOME '\"" % (marker, marker)
    with pytest.raises(ServerError) as info:
        make(httpserver).health(headers={"X-Note": nasty})
    command = info.value.to_curl()
    assert parse(command)["headers"]["X-Note"] == nasty.strip()
    if shutil.which("curl"):
        (again,) = run_curl(command, httpserver)
        assert again.headers["X-Note"] == nasty.strip()
    assert not marker.exists()


def test_provider_key_in_a_set_key_body_is_not_leaked(httpserver: HTTPServer) -> None:
    # The server echoes the key back in its error: neither the message nor the command keeps it.
    httpserver.expect_request("/api/v1/providers/keys", method="PUT").respond_with_json(
        {"error": "INVALID_KEY", "message": "key %s rejected" % PROVIDER_KEY}, status=422)
    with pytest.raises(ValidationError) as info:
        make(httpserver).providers.set_key("fal", PROVIDER_KEY)
    err = info.value
    command = err.to_curl()
    assert_no_secret(command, str(err), repr(err), json.dumps(err.details), pickle.dumps(err).decode("latin-1"))
    body = json.loads(parse(command)["body"])
    assert body == {"provider": "fal", "api_key": "$VISGATE_FAL_API_KEY"}
    if shutil.which("curl"):
        (again,) = run_curl(command, httpserver)
        assert json.loads(again.get_data()) == {"provider": "fal", "api_key": FAL}  # the variable's value


def test_validate_key_for_another_provider_names_its_variable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/providers/validate").respond_with_json({"error": "X"}, status=400)
    with pytest.raises(ValidationError) as info:
        make(httpserver).providers.validate_key("runway", PROVIDER_KEY)
    assert json.loads(parse(info.value.to_curl())["body"])["api_key"] == "$VISGATE_RUNWAY_API_KEY"


def test_a_secret_default_header_becomes_a_variable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/health").respond_with_json({"error": "DOWN"}, status=500)
    with pytest.raises(ServerError) as info:
        make(httpserver, default_headers={"X-Gateway-Token": "gw-token-0a1b2c"}).health()
    command = info.value.to_curl()
    assert "gw-token-0a1b2c" not in command
    assert parse(command)["headers"]["X-Gateway-Token"] == "$VISGATE_HEADER_X_GATEWAY_TOKEN"


def test_redirect_to_another_origin_the_command_is_the_last_hop(httpserver: HTTPServer) -> None:
    from tests._servers import http_server

    for other in http_server():
        other.expect_request("/elsewhere").respond_with_json({"error": "BROKEN"}, status=500)
        httpserver.expect_request("/api/v1/usage/logs").respond_with_response(
            Response(status=307, headers={"Location": other.url_for("/elsewhere")}))
        with pytest.raises(ServerError) as info:
            make(httpserver, fal_key=FAL).usage.logs()
        parsed = parse(info.value.to_curl())
        assert parsed["url"] == other.url_for("/elsewhere") and info.value.attempts == 1
        assert "Authorization" not in parsed["headers"] and "X-Fal-Key" not in parsed["headers"]
        assert_no_secret(info.value.to_curl())


def test_pickled_error_keeps_its_command(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/auth/me").respond_with_json({"error": "NO"}, status=404)
    with pytest.raises(NotFoundError) as info:
        make(httpserver).auth.me()
    copy = pickle.loads(pickle.dumps(info.value))
    assert copy.to_curl() == info.value.to_curl()
    assert (copy.method, copy.url, copy.attempts, copy.elapsed) == (info.value.method, info.value.url, 1, info.value.elapsed)


# -- errors that did not come from a request ----------------------------------------------


def test_error_before_sending_gives_a_comment_not_a_crash(httpserver: HTTPServer) -> None:
    with pytest.raises(ValidationError) as info:
        make(httpserver).images.generate("m", "p", width="wide")  # type: ignore[arg-type]
    err = info.value
    assert (err.method, err.url, err.attempts, err.elapsed) == (None, None, 0, None)
    assert err.to_curl().startswith("# ") and "\n" not in err.to_curl()
    assert httpserver.log == []


def test_missing_key_gives_a_comment(httpserver: HTTPServer) -> None:
    with pytest.raises(visgate_sdk.AuthenticationError) as info:
        Client(api_key="", base_url=httpserver.url_for("/api/v1")).auth.me()
    assert info.value.to_curl().startswith("# ")


def test_comment_stays_one_line() -> None:
    err = VisgateError("first line\nrm -rf ~\r\nthird")
    assert err.to_curl().count("\n") == 0 and err.to_curl().startswith("# ")
    assert shlex.split(err.to_curl(), comments=True) == []
