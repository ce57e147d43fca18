"""Tests written from surviving mutants of ``tools/mutate.py`` (see ``tools/mutation-report.md``).

Each test pins behaviour a user relies on that no other test asserted; the comment above it
names the mutant that survived without it.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
from typing import Any

import pytest

from tests._servers import RawServer, Request, keepalive_json_handler, response_bytes
from visgate_emulator import DEMO_API_KEY, Emulator
from visgate_sdk import Client, ConnectionError, ImageResult, NotFoundError, Retry, TimeoutError, TLSError, ValidationError

KEY = "vg-mutants-key-0123456789"


# visgate_sdk.py:529 ("\x7f" <= c <= "\x9f"): both ends of the C1 control range are refused in a
# header value, the printable characters just outside it are sent.
@pytest.mark.parametrize("bad", ["\x7f", "\x9f"])
def test_header_values_refuse_both_ends_of_the_c1_control_range(make_client: Any, bad: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_client(default_headers={"X-Tag": "a" + bad + "b"})
    assert info.value.field == "X-Tag"


def test_header_values_accept_the_printable_neighbours_of_the_control_range(make_client: Any, httpserver: Any) -> None:
    httpserver.expect_request("/api/v1/usage", headers={"X-Tag": "a~\xa0b"}).respond_with_json({})
    client = make_client(default_headers={"X-Tag": "a~\xa0b"})
    client.usage.get()
    httpserver.check_assertions()


# visgate_sdk.py:670 (min(retry_number, 64)): the documented formula min(backoff_max,
# backoff_factor * 2**n) holds up to the 64th retry; past it the exponent is capped, so a huge
# retry number cannot overflow a float.
def test_backoff_follows_the_documented_formula_up_to_retry_64_and_never_overflows() -> None:
    retry = Retry(backoff_factor=1.0, backoff_max=1e300, jitter=0.0)
    assert retry.backoff(10) == 2.0**10
    assert retry.backoff(64) == 2.0**64
    assert retry.backoff(10**6) == 2.0**64


def _hang_up_after_the_client_hello(conn: socket.socket, server: RawServer) -> None:
    conn.settimeout(0.3)
    with contextlib.suppress(OSError):
        while conn.recv(65536):  # read all the client sent, so closing sends a FIN, not a reset
            pass


# visgate_sdk.py:855 (ssl is not None and isinstance(exc, SSLEOFError ...)): a server that hangs
# up in the middle of the TLS handshake is a network failure, retried like a reset, not a TLS
# configuration error raised at once.
def test_a_hang_up_during_the_tls_handshake_is_a_retried_connection_error() -> None:
    with RawServer(_hang_up_after_the_client_hello) as server, Client(
        KEY, base_url=server.url(scheme="https"), max_retries=Retry(total=1, backoff_factor=0.001), timeout=5
    ) as client:
        with pytest.raises(ConnectionError) as info:
            client.models.list()
        assert not isinstance(info.value, TLSError)
        assert "closed unexpectedly" in str(info.value)
        assert server.connections == 2


def _answer_in_plain_http(conn: socket.socket, server: RawServer) -> None:
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    _hang_up_after_the_client_hello(conn, server)


# visgate_sdk.py:861 (TLSError(... handshake failed), retryable False): an https:// URL aimed at
# a plain-HTTP port is a configuration error: a TLSError at once, never retried.
def test_a_failed_tls_handshake_is_a_tls_error_not_retried() -> None:
    with RawServer(_answer_in_plain_http) as server, Client(
        KEY, base_url=server.url(scheme="https"), max_retries=Retry(total=2, backoff_factor=0.001), timeout=5
    ) as client:
        with pytest.raises(TLSError) as info:
            client.models.list()
        assert "handshake" in str(info.value)
        assert server.connections == 1


# visgate_sdk.py:861 (TLSError(certificate verification failed), retryable False): a server whose
# certificate the client does not trust gets one attempt: retrying cannot make it trusted.
def test_an_untrusted_certificate_is_a_tls_error_not_retried(tls: Any) -> None:
    with RawServer(_hang_up_after_the_client_hello, tls=tls.server_context("127.0.0.1")) as server, Client(
        KEY, base_url=server.url(), max_retries=Retry(total=2, backoff_factor=0.001), timeout=5
    ) as client:
        with pytest.raises(TLSError) as info:
            client.models.list()
        assert "certificate verification failed" in str(info.value)
        assert server.connections == 1


# visgate_sdk.py:993 (100 < status < 200): every interim 1xx answer is skipped, up to 199, not only
# the ones seen in practice (100, 103); a 199 taken for the answer would leave the real answer in
# the keep-alive connection for the next call to read.
@pytest.mark.parametrize("preamble", [b"HTTP/1.1 102 Processing\r\n\r\n", b"HTTP/1.1 199 Whatever\r\nX-A: b\r\n\r\n"])
def test_any_interim_1xx_answer_is_skipped(preamble: bytes, make_client: Any) -> None:
    def answer(req: Request, server: RawServer) -> bytes:
        return preamble + response_bytes(200, {"id": req.target.rsplit("/", 1)[1]})

    with RawServer(keepalive_json_handler(answer)) as raw:
        client = make_client(raw.url())
        assert [client.models.get("m%d" % i).id for i in range(3)] == ["m0", "m1", "m2"]
        assert raw.connections == 1


# visgate_sdk.py:1081 (return verify): verify=SSLContext is the context used, so a private CA
# in it is trusted (the system store alone would refuse the certificate).
def test_verify_given_an_ssl_context_uses_it(tls: Any) -> None:
    def answer(req: Request, server: RawServer) -> bytes:
        return response_bytes(200, {"id": req.target.rsplit("/", 1)[1]})

    with RawServer(keepalive_json_handler(answer), tls=tls.server_context("127.0.0.1")) as server, Client(
        KEY, base_url=server.url(), verify=tls.client_context(), max_retries=0, timeout=5
    ) as client:
        assert client.models.get("m1").id == "m1"


# visgate_sdk.py:1345 (message or "; ".join(...)): a FastAPI validation list gives the message
# (every item's msg) and the field; a top-level message, when the body has one, wins.
def test_a_fastapi_validation_list_gives_the_message_and_the_field(make_client: Any, httpserver: Any) -> None:
    detail = [{"loc": ["body", "prompt"], "msg": "field required"}, {"loc": ["body", "n"], "msg": "too big"}, "odd"]
    httpserver.expect_request("/api/v1/usage").respond_with_json({"detail": detail}, status=422)
    with pytest.raises(ValidationError) as info:
        make_client().usage.get()
    assert info.value.message == "field required; too big; odd"
    assert info.value.field == "prompt"


def test_a_top_level_message_wins_over_the_validation_list(make_client: Any, httpserver: Any) -> None:
    body = {"message": "the prompt is missing", "detail": [{"loc": ["body", "prompt"], "msg": "field required"}]}
    httpserver.expect_request("/api/v1/usage").respond_with_json(body, status=422)
    with pytest.raises(ValidationError) as info:
        make_client().usage.get()
    assert info.value.message == "the prompt is missing"
    assert info.value.field == "prompt"


# visgate_sdk.py:1569 (round(..., 3)): an error's ``elapsed`` is in seconds, to the millisecond,
# so it logs readably ("%s" of it is short) and never goes negative.
def test_an_errors_elapsed_is_whole_milliseconds(make_client: Any, httpserver: Any) -> None:
    httpserver.expect_request("/api/v1/usage").respond_with_json({"error": "NOT_FOUND"}, status=404)
    client = make_client()
    seen = []
    for _ in range(4):
        with pytest.raises(NotFoundError) as info:
            client.usage.get()
        seen.append(info.value.elapsed)
    assert all(0 <= e < 5 and round(e, 3) == e for e in seen), seen


# visgate_sdk.py:1574 (json.dumps(secret)[1:-1]): a provider key that JSON escapes (a quote, a
# backslash) is still found in the request body and replaced by its variable in to_curl(); no
# character of it is left behind.
def test_a_provider_key_that_json_escapes_never_leaks_into_to_curl(make_client: Any, httpserver: Any) -> None:
    secret = 'fal-"quoted\\key-0123456789'
    httpserver.expect_request("/api/v1/providers/keys", method="PUT").respond_with_json({"error": "INVALID_KEY"}, status=422)
    with pytest.raises(ValidationError) as info:
        make_client(max_retries=0).providers.set_key("fal", secret)
    command = info.value.to_curl()
    assert "quoted" not in command and "0123456789" not in command
    words = shlex.split(command)
    body = json.loads(words[words.index("--data-raw") + 1])
    assert body == {"provider": "fal", "api_key": "$VISGATE_FAL_API_KEY"}


# visgate_sdk.py:1790 (resp.status < 400): every error status in a user's status_forcelist is
# retried, 400 included (the lowest one).
def test_a_400_in_the_status_forcelist_is_retried(make_client: Any, httpserver: Any) -> None:
    httpserver.expect_oneshot_request("/api/v1/usage").respond_with_json({"error": "FLAKY_GATEWAY"}, status=400)
    httpserver.expect_oneshot_request("/api/v1/usage").respond_with_json({"period": "month"})
    client = make_client(max_retries=Retry(total=1, backoff_factor=0.001, status_forcelist={400}))
    client.usage.get()
    assert len(httpserver.log) == 2


# visgate_sdk.py:1930 (left <= 0): once the polling timeout is reached the wait ends with a
# TimeoutError; no further status call is made (a poll interval longer than the timeout gives
# one status call at the start and one when the time is up).
def test_polling_stops_when_its_timeout_is_reached(make_client: Any, httpserver: Any) -> None:
    httpserver.expect_request("/api/v1/requests/req-1").respond_with_json({"request_id": "req-1", "status": "processing"})
    client = make_client()
    with pytest.raises(TimeoutError) as info:
        client.requests.get("req-1", wait=True, timeout=0.2, poll_interval=5)
    assert info.value.last_status == "processing"
    assert 2 <= len(httpserver.log) <= 3, len(httpserver.log)


# visgate_sdk.py:2029 (frac[:digits][:6].ljust(6, "0")): a timestamp's fraction of a second is
# kept to the microsecond however many digits the server sends (1, or 9 for nanoseconds; Python
# before 3.11 accepts exactly 3 or 6).
@pytest.mark.parametrize(
    ("stamp", "micro"),
    [("2026-01-02T03:04:05.5Z", 500000), ("2026-01-02T03:04:05.123456789+00:00", 123456), ("2026-01-02T03:04:05.0001z", 100)],
)
def test_timestamps_keep_their_fraction_of_a_second(make_client: Any, httpserver: Any, stamp: str, micro: int) -> None:
    httpserver.expect_request("/api/v1/usage").respond_with_json({"period_start": stamp})
    start = make_client().usage.get().period_start
    assert start is not None and start.utcoffset() is not None
    assert (start.second, start.microsecond) == (5, micro)


# visgate_sdk.py:2200 (_check_int("index", index, minimum=0, ...)): save(index=-1) is refused,
# not taken as Python's "the last one": an index counts media from 0, and nothing is written.
@pytest.mark.parametrize("index", [-1, 2])
def test_save_refuses_an_index_outside_the_media(tmp_path: Any, index: int) -> None:
    result = ImageResult(id="x", images=["http://127.0.0.1:9/a.png", "http://127.0.0.1:9/b.png"])
    with pytest.raises(ValidationError) as info:
        result.save(tmp_path / "out.png", index=index)
    assert info.value.field == "index"
    assert list(tmp_path.iterdir()) == []


# visgate_sdk.py:3150 (isinstance(outcome, BaseException) or cache_hit): a cache hit costs
# nothing against budget_usd, whatever cost the answer reports; a fresh generation is counted.
def test_a_cache_hit_is_not_counted_against_the_budget(make_client: Any, httpserver: Any) -> None:
    answer = {"id": "g1", "images": ["https://cdn.example.com/a.png"], "model": "m", "provider": "fal", "cost": 0.25}
    httpserver.expect_oneshot_request("/api/v1/images/generate", method="POST").respond_with_json(dict(answer, cache_hit=True))
    httpserver.expect_oneshot_request("/api/v1/images/generate", method="POST").respond_with_json(dict(answer, cache_hit=False))
    client = make_client(budget_usd=1.0)
    assert client.images.generate("m", "a cat").cache_hit
    assert client.spent_usd == 0.0
    assert not client.images.generate("m", "a cat").cache_hit
    assert client.spent_usd == pytest.approx(0.25)


# visgate_sdk.py:3929 (DoctorCheck.ok is status == "pass"): against the emulator each check's ok
# says whether it passed; a skipped check is not ok, a failed one neither.
def test_each_doctor_check_is_ok_exactly_when_it_passed(emulator: Emulator) -> None:
    with Client(DEMO_API_KEY, base_url=emulator.base_url) as client:
        report = client.doctor()
    assert {c.status for c in report} == {"pass", "skip"}
    assert all(c.ok == (c.status == "pass") for c in report)


# visgate_sdk.py:3545 (max_response_bytes minimum=1): 1 byte is the smallest limit accepted.
def test_max_response_bytes_accepts_1_and_refuses_0() -> None:
    Client(KEY, max_response_bytes=1).close()
    with pytest.raises(ValidationError):
        Client(KEY, max_response_bytes=0)


def test_a_get_answered_204_no_content_is_an_empty_dict(make_client: Any, httpserver: Any) -> None:
    httpserver.expect_request("/api/v1/billing/stats").respond_with_data(b"", status=204)
    assert make_client().billing.stats() == {}


def test_to_curl_of_a_call_without_a_key_is_not_garbled(httpserver: Any) -> None:
    # No API key and no BYOK key: no secret to hide, so nothing is replaced in the command.
    httpserver.expect_request("/api/v1/models/org/missing").respond_with_json(
        {"error": "MODEL_NOT_FOUND", "message": "no such model"}, status=404)
    with Client(base_url=httpserver.url_for("/api/v1"), max_retries=0) as client:
        assert client.api_key == ""
        with pytest.raises(NotFoundError) as info:
            client.models.get("org/missing")
    curl = info.value.to_curl()
    assert "$VISGATE" not in curl
    assert shlex.split(curl)[:4] == ["curl", "-X", "GET", httpserver.url_for("/api/v1/models/org/missing")]


@pytest.mark.parametrize("status", [301, 302])
def test_a_post_redirected_with_301_or_302_is_followed_as_a_get(make_client: Any, httpserver: Any, status: int) -> None:
    # As browsers and requests do: the body and its Idempotency-Key do not follow a 301/302.
    httpserver.expect_request("/api/v1/providers/validate", method="POST").respond_with_data(
        b"", status=status, headers={"Location": "/api/v1/validated"})
    httpserver.expect_request("/api/v1/validated", method="GET").respond_with_json({"valid": True, "message": "ok"})
    assert make_client().providers.validate_key("fal", "fal-key-0123").valid is True
    followed = httpserver.log[-1][0]
    assert followed.method == "GET" and not followed.get_data()
    assert "Idempotency-Key" not in followed.headers and "Content-Type" not in followed.headers


def test_visgate_models_asks_for_20_models_by_default(httpserver: Any, capsys: Any) -> None:
    import visgate_sdk

    httpserver.expect_request("/api/v1/models").respond_with_json({"models": [], "total_count": 0})
    assert visgate_sdk.main(["--api-key", "vg-k", "--base-url", httpserver.url_for("/api/v1"), "models"]) == 0
    assert httpserver.log[-1][0].args.get("limit") == "20"
    assert "(0 of 0)" in capsys.readouterr().out
