"""Bugs the suite found, each fixed after its test failed: a 413 with Retry-After is retried, and
no socket outlives its use (a thread that ends, an answer over the size limit)."""

from __future__ import annotations

import gc
import threading
import warnings
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from tests._servers import RawServer, keepalive_json_handler, response_bytes
from visgate_sdk import InvalidResponseError, Retry

P = "/api/v1"


def test_413_with_retry_after_is_retried(httpserver: HTTPServer, fake_time: Any, make_client: Any) -> None:
    answers = iter(
        [
            Response('{"error": "PAYLOAD_TOO_LARGE", "message": "busy"}', status=413, headers={"Retry-After": "2"},
                     content_type="application/json"),
            Response('{"status": "ok"}', status=200, content_type="application/json"),
        ]
    )

    def handler(request: Request) -> Response:
        return next(answers)

    httpserver.expect_request(P + "/health").respond_with_handler(handler)
    client = make_client(max_retries=Retry(total=2, backoff_factor=30.0))
    assert client.health() == {"status": "ok"}
    assert fake_time.sleeps == [2.0]
    assert len(httpserver.log) == 2


def test_a_thread_that_exits_leaves_no_unclosed_connection(make_client: Any) -> None:
    answer = keepalive_json_handler(lambda req, server: response_bytes(200, {"status": "ok"}))
    with RawServer(answer) as raw:
        client = make_client(raw.url(), max_retries=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            worker = threading.Thread(target=client.health)
            worker.start()
            worker.join(10)
            gc.collect()
        assert len(raw.requests) == 1, "the worker's call reached the server"
        leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        assert leaked == []


def test_an_answer_over_the_size_limit_closes_its_socket(httpserver: HTTPServer, make_client: Any) -> None:
    httpserver.expect_request(P + "/usage").respond_with_data(b'{"pad": "' + b"x" * 5000 + b'"}', content_type="application/json")
    client = make_client(max_response_bytes=1000, max_retries=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(InvalidResponseError) as info:
            client.usage.get()
        del info
        gc.collect()
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaked == []
