"""AsyncClient: the same methods and signatures as Client, awaitable; the same results;
``async with``/``close``; 202 handles; polling; concurrency bound and real overlap.
Plain tests driving ``asyncio.run`` (no pytest-asyncio)."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
import time
from typing import Any, Callable, Dict, List, Type

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import visgate_sdk
from visgate_sdk import (
    AsyncClient,
    AsyncGenerationRequest,
    AuthenticationError,
    AuthInfo,
    BillingInfo,
    BillingPricing,
    Client,
    GenerateResult,
    ImageResult,
    ModelInfo,
    ModelsResponse,
    ProviderBalancesResponse,
    ProviderKeyInfo,
    ProviderKeysResponse,
    ProviderValidationResult,
    RequestStatusResult,
    UsageSummary,
    ValidationError,
    VideoResult,
)

P = "/api/v1"
UA = "visgate-sdk-python/" + visgate_sdk.__version__

CLIENT_DEFAULTS = {"api_key": "vg-async-key"}  # for make_client / make_async_client

RESOURCES = ["images", "videos", "requests", "models", "usage", "providers", "auth", "api_keys", "billing"]


def sent(server: HTTPServer) -> List[Request]:
    return [req for req, _ in server.log]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def public_methods(obj: Any) -> Dict[str, Any]:
    return {n: getattr(obj, n) for n in dir(obj) if not n.startswith("_") and inspect.isfunction(getattr(type(obj), n, None))}


# -- same surface -----------------------------------------------------------------


def test_client_methods_have_the_same_signatures() -> None:
    sync = public_methods(Client(api_key="vg-k"))
    asy = public_methods(AsyncClient(api_key="vg-k"))
    assert set(sync) == set(asy)
    assert {"generate", "health", "download", "set_provider_headers", "close"} <= set(sync)
    for name in sync:
        if name == "close":
            continue  # sync close() vs ``await close()``
        assert inspect.signature(asy[name]) == inspect.signature(sync[name]), name
        if name not in ("set_provider_headers", "deadline"):  # plain methods on both clients
            assert inspect.iscoroutinefunction(asy[name]), name
    assert inspect.iscoroutinefunction(AsyncClient.close)


@pytest.mark.parametrize("resource", RESOURCES)
def test_resource_methods_have_the_same_signatures(resource: str) -> None:
    sync_res = getattr(Client(api_key="vg-k"), resource)
    async_res = getattr(AsyncClient(api_key="vg-k"), resource)
    assert type(async_res).__name__ == "Async" + type(sync_res).__name__
    sync = public_methods(sync_res)
    asy = public_methods(async_res)
    assert sync, resource
    assert set(sync) == set(asy)
    for name in sync:
        assert inspect.signature(asy[name]) == inspect.signature(sync[name]), "%s.%s" % (resource, name)
        assert inspect.iscoroutinefunction(asy[name]), "%s.%s" % (resource, name)


def test_handles_have_the_same_signatures() -> None:
    for name in ("wait", "refresh"):
        sync = getattr(visgate_sdk.GenerationRequest, name)
        asy = getattr(AsyncGenerationRequest, name)
        assert inspect.signature(sync) == inspect.signature(asy)
        assert inspect.iscoroutinefunction(asy)


# -- every method, awaited ------------------------------------------------------------

GEN = {"id": "g1", "images": ["https://x/1.png"], "estimated_cost_usd": 0.01, "provider": "fal"}
CASES = [
    ("generate", lambda c: c.generate("a cat", model="m/x", params={"s": 1}), "POST", "/generate", GEN, GenerateResult),
    ("health", lambda c: c.health(), "GET", "/health", {"status": "ok"}, dict),
    ("images.generate", lambda c: c.images.generate("m/x", "a cat", width=512, include_steps=True), "POST", "/images/generate", {"id": "i", "images": ["u"]}, ImageResult),
    ("videos.generate", lambda c: c.videos.generate("m/v", "a cat", duration_seconds=4.0), "POST", "/videos/generate", {"id": "v", "video_url": "u"}, VideoResult),
    ("requests.get", lambda c: c.requests.get("r1"), "GET", "/requests/r1", {"request_id": "r1", "status": "completed"}, RequestStatusResult),
    ("models.list", lambda c: c.models.list(provider="fal", limit=3), "GET", "/models", {"models": [{"id": "a"}]}, ModelsResponse),
    ("models.get", lambda c: c.models.get("fal-ai/flux/schnell"), "GET", "/models/fal-ai/flux/schnell", {"id": "fal-ai/flux/schnell"}, ModelInfo),
    ("models.search", lambda c: c.models.search("flux", limit=2), "GET", "/models", {"models": []}, ModelsResponse),
    ("usage.get", lambda c: c.usage.get(period="day"), "GET", "/usage", {"total_cost_usd": 1.0}, UsageSummary),
    ("usage.logs", lambda c: c.usage.logs(limit=5, offset=1), "GET", "/usage/logs", {"logs": [{"id": "l"}]}, list),
    ("usage.dashboard", lambda c: c.usage.dashboard(period="year"), "GET", "/dashboard", {"total_generations": 3}, dict),
    ("providers.list_keys", lambda c: c.providers.list_keys(), "GET", "/providers/keys", {"keys": []}, ProviderKeysResponse),
    ("providers.set_key", lambda c: c.providers.set_key("fal", "fal-s"), "PUT", "/providers/keys", {"provider": "fal"}, ProviderKeyInfo),
    ("providers.delete_key", lambda c: c.providers.delete_key("fal"), "DELETE", "/providers/keys/fal", {"ok": True}, dict),
    ("providers.validate_key", lambda c: c.providers.validate_key("fal", "fal-s"), "POST", "/providers/validate", {"valid": True}, ProviderValidationResult),
    ("providers.balances", lambda c: c.providers.balances(), "GET", "/providers/balances", {"balances": []}, ProviderBalancesResponse),
    ("auth.me", lambda c: c.auth.me(), "GET", "/auth/me", {"role": "admin"}, AuthInfo),
    ("api_keys.list", lambda c: c.api_keys.list(), "GET", "/api-keys", [{"id": "k"}], list),
    ("billing.stats", lambda c: c.billing.stats(), "GET", "/billing/stats", {"a": 1}, dict),
    ("billing.info", lambda c: c.billing.info(), "GET", "/billing/info", {"tier": "pro"}, BillingInfo),
    ("billing.pricing", lambda c: c.billing.pricing(), "GET", "/billing/pricing", {"pricing": {}}, BillingPricing),
]


@pytest.mark.parametrize("name,call,method,path,answer,rtype", CASES, ids=[c[0] for c in CASES])
def test_every_async_method_matches_the_sync_one(
    httpserver: HTTPServer, name: str, call: Any, method: str, path: str, answer: Any, rtype: Type[Any], make_async_client: Any
) -> None:
    httpserver.expect_request(P + path, method=method).respond_with_json(answer)

    async def main() -> Any:
        async with make_async_client(fal_key="fal-k") as client:
            pending = call(client)
            assert inspect.isawaitable(pending)
            return await pending

    async_result = run(main())
    with Client("vg-async-key", base_url=httpserver.url_for(P), fal_key="fal-k", max_retries=0) as sync_client:
        sync_result = call(sync_client)
    assert type(async_result) is type(sync_result)
    assert isinstance(async_result, rtype)
    assert async_result == sync_result
    a_req, s_req = sent(httpserver)
    assert (a_req.method, a_req.full_path, a_req.get_data()) == (s_req.method, s_req.full_path, s_req.get_data())
    for header in ("Authorization", "User-Agent", "X-Fal-Key", "Content-Type", "Prefer"):
        assert a_req.headers.get(header) == s_req.headers.get(header), header
    assert a_req.headers["Authorization"] == "Bearer vg-async-key"
    assert a_req.headers["User-Agent"] == UA
    assert ("Idempotency-Key" in a_req.headers) == (method == "POST")


def test_async_errors_are_the_same_types(httpserver: HTTPServer, make_async_client: Any) -> None:
    httpserver.expect_request(P + "/auth/me").respond_with_json({"error": "AUTHENTICATION_ERROR", "message": "bad key"}, status=401)

    async def main() -> None:
        async with make_async_client() as client:
            await client.auth.me()

    with pytest.raises(AuthenticationError) as info:
        run(main())
    assert str(info.value) == "[AUTHENTICATION_ERROR] bad key"
    assert len(sent(httpserver)) == 1


def test_async_bad_input_fails_before_sending(httpserver: HTTPServer, make_async_client: Any) -> None:
    async def main() -> None:
        async with make_async_client() as client:
            with pytest.raises(ValidationError) as info:
                await client.images.generate("m/x", "a cat", num_images=0)
            assert info.value.field == "num_images"
            with pytest.raises(ValidationError):
                await client.requests.get("", wait=True)
            with pytest.raises(ValidationError):
                await client.generate("")

    run(main())
    assert httpserver.log == []


def test_async_missing_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request(P + "/health").respond_with_json({"status": "ok"})

    async def main() -> None:
        async with AsyncClient(base_url=httpserver.url_for(P)) as client:
            assert (await client.health()) == {"status": "ok"}
            with pytest.raises(AuthenticationError):
                await client.usage.get()

    run(main())
    assert len(sent(httpserver)) == 1
    assert "Authorization" not in sent(httpserver)[0].headers


def test_async_max_retries_is_the_given_count() -> None:
    assert AsyncClient(api_key="vg-k", max_retries=3).max_retries == 3
    assert AsyncClient(api_key="vg-k", max_retries=0).max_retries == 0
    assert AsyncClient(api_key="vg-k").max_retries == visgate_sdk.DEFAULT_MAX_RETRIES
    assert AsyncClient(api_key="vg-k", max_retries=visgate_sdk.Retry(total=5)).max_retries == 5


def test_bad_max_concurrency() -> None:
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValidationError) as info:
            AsyncClient(api_key="vg-k", max_concurrency=bad)
        assert info.value.field == "max_concurrency"


# -- configuration, lifecycle ---------------------------------------------------------


def test_async_env_fallback_and_repr(httpserver: HTTPServer, point_env: Any) -> None:
    point_env(httpserver, "vg-ENV-SECRET")
    httpserver.expect_request(P + "/auth/me").respond_with_json({"role": "r"})
    client = AsyncClient(fal_key="fal-SECRET", max_retries=0)
    assert client.base_url == httpserver.url_for(P)
    assert client.api_key == "vg-ENV-SECRET"
    assert repr(client) == "AsyncClient(base_url=%r)" % httpserver.url_for(P)
    assert "SECRET" not in repr(client)

    async def main() -> None:
        async with client:
            await client.auth.me()

    run(main())
    assert sent(httpserver)[0].headers["Authorization"] == "Bearer vg-ENV-SECRET"


def test_async_with_returns_the_client_and_closes(httpserver: HTTPServer, make_async_client: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_json({"status": "ok"})

    async def main() -> None:
        client = make_async_client()
        async with client as entered:
            assert entered is client
            await client.health()
        with pytest.raises(visgate_sdk.ConnectionError):
            await client.health()

    run(main())
    assert len(sent(httpserver)) == 1


def test_await_close(httpserver: HTTPServer, make_async_client: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_json({"status": "ok"})

    async def main() -> None:
        client = make_async_client()
        assert (await client.health())["status"] == "ok"
        result = client.close()
        assert inspect.isawaitable(result)
        await result
        await client.close()  # twice is fine
        with pytest.raises(visgate_sdk.ConnectionError):
            await client.models.list()

    run(main())
    assert len(sent(httpserver)) == 1


def test_close_before_any_call(httpserver: HTTPServer, make_async_client: Any) -> None:
    async def main() -> None:
        client = make_async_client()
        await client.close()
        with pytest.raises(visgate_sdk.ConnectionError):
            await client.health()

    run(main())
    assert httpserver.log == []


def test_async_set_provider_headers(httpserver: HTTPServer, make_async_client: Any) -> None:
    httpserver.expect_request(P + "/health").respond_with_json({"status": "ok"})

    async def main() -> None:
        async with make_async_client(fal_key="fal-1", replicate_key="r8-1") as client:
            await client.health()
            client.set_provider_headers(runway_key="rw-2")
            await client.health()

    run(main())
    first, second = [r.headers for r in sent(httpserver)]
    assert first["X-Fal-Key"] == "fal-1" and first["X-Replicate-Key"] == "r8-1" and "X-Runway-Key" not in first
    assert second["X-Runway-Key"] == "rw-2" and "X-Fal-Key" not in second and "X-Replicate-Key" not in second


def test_async_per_call_timeout(tserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return Response('{"status": "ok"}', content_type="application/json")

    tserver.expect_request(P + "/health").respond_with_handler(slow)

    async def main() -> None:
        async with AsyncClient("vg-k", base_url=tserver.url_for(P), timeout=30, max_retries=0) as client:
            await client.health(timeout=0.1)

    with pytest.raises(visgate_sdk.TimeoutError):
        run(main())


# -- 202 handles and polling -------------------------------------------------------------


def _status_sequence(*statuses: str, **last_extra: Any) -> Callable[[Request], Response]:
    it = iter(statuses)
    state = {"last": statuses[-1]}

    def handler(request: Request) -> Response:
        status = next(it, state["last"])
        payload: Dict[str, Any] = {"request_id": "areq-1", "status": status}
        if status in ("completed", "failed"):
            payload.update(last_extra)
        return Response(json.dumps(payload), content_type="application/json")

    return handler


@pytest.mark.parametrize("kind", ["images", "videos"])
def test_wait_false_gives_async_handle_that_waits(httpserver: HTTPServer, kind: str, make_async_client: Any) -> None:
    httpserver.expect_request(P + "/%s/generate" % kind, method="POST").respond_with_json(
        {"request_id": "areq-1", "status": "pending"}, status=202
    )
    httpserver.expect_request(P + "/requests/areq-1").respond_with_handler(
        _status_sequence("processing", "processing", "completed", output_url="https://x/out")
    )

    async def main() -> Any:
        async with make_async_client() as client:
            handle = await getattr(client, kind).generate("m/x", "a cat", wait=False)
            assert isinstance(handle, AsyncGenerationRequest)
            assert handle.request_id == "areq-1" and handle.status == "pending"
            assert "areq-1" in repr(handle)
            return await handle.wait(timeout=10, poll_interval=0.01)

    result = run(main())
    assert isinstance(result, RequestStatusResult)
    assert result.status == "completed" and result.output_url == "https://x/out"
    reqs = sent(httpserver)
    assert reqs[0].headers["Prefer"] == "respond-async"
    assert [r.method for r in reqs] == ["POST", "GET", "GET", "GET"]


def test_async_handle_refresh(httpserver: HTTPServer, make_async_client: Any) -> None:
    httpserver.expect_request(P + "/images/generate", method="POST").respond_with_json(
        {"request_id": "areq-1", "status": "pending"}, status=202
    )
    httpserver.expect_request(P + "/requests/areq-1").respond_with_handler(_status_sequence("processing"))

    async def main() -> Any:
        async with make_async_client() as client:
            handle = await client.images.generate("m/x", "a cat", wait=False)
            result = await handle.refresh()
            return handle, result

    handle, result = run(main())
    assert result.status == "processing" and handle.status == "processing"


def test_async_polling_timeout(httpserver: HTTPServer, make_async_client: Any) -> None:
    httpserver.expect_request(P + "/requests/areq-1").respond_with_handler(_status_sequence("processing"))

    async def main() -> None:
        async with make_async_client() as client:
            # wait_for only guards the suite against a hang; the SDK's own deadline must fire first.
            await asyncio.wait_for(client.requests.get("areq-1", wait=True, timeout=0.2, poll_interval=0.02), 20)

    with pytest.raises(visgate_sdk.TimeoutError) as info:
        run(main())
    assert info.value.request_id == "areq-1"
    assert info.value.last_status == "processing"
    assert len(sent(httpserver)) >= 2


def test_async_handle_wait_timeout(httpserver: HTTPServer, make_async_client: Any) -> None:
    httpserver.expect_request(P + "/videos/generate", method="POST").respond_with_json(
        {"request_id": "areq-1", "status": "pending"}, status=202
    )
    httpserver.expect_request(P + "/requests/areq-1").respond_with_handler(_status_sequence("pending"))

    async def main() -> None:
        async with make_async_client() as client:
            handle = await client.videos.generate("m/v", "a cat", wait=False)
            await asyncio.wait_for(handle.wait(timeout=0.15, poll_interval=0.02), 20)

    with pytest.raises(visgate_sdk.TimeoutError) as info:
        run(main())
    assert info.value.request_id == "areq-1" and info.value.last_status == "pending"


def test_async_polling_failed_job(httpserver: HTTPServer, make_async_client: Any) -> None:
    httpserver.expect_request(P + "/requests/areq-1").respond_with_handler(
        _status_sequence("processing", "failed", error_message="content policy")
    )

    async def main() -> Any:
        async with make_async_client() as client:
            return await client.requests.get("areq-1", wait=True, timeout=10, poll_interval=0.01)

    result = run(main())
    assert result.status == "failed" and result.error_message == "content policy"


class LoopGuard:
    """Stands in for ``visgate_sdk._time``: records any ``sleep`` made on an event loop's thread."""

    def __init__(self) -> None:
        self.on_loop: List[float] = []

    def sleep(self, seconds: float) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass  # a worker thread: fine
        else:
            self.on_loop.append(seconds)
        time.sleep(seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def test_polling_does_not_block_the_event_loop(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch, make_async_client: Any) -> None:
    guard = LoopGuard()
    monkeypatch.setattr(visgate_sdk, "_time", guard)
    httpserver.expect_request(P + "/requests/areq-1").respond_with_handler(
        _status_sequence("processing", "processing", "processing", "completed")
    )

    async def main() -> List[str]:
        order: List[str] = []

        async def other() -> None:
            await asyncio.sleep(0)
            order.append("other")

        async with make_async_client() as client:
            async def poll() -> None:
                await client.requests.get("areq-1", wait=True, timeout=10, poll_interval=0.02)
                order.append("poll")

            await asyncio.gather(poll(), other())
        return order

    assert run(main()) == ["other", "poll"]
    assert len(sent(httpserver)) == 4
    assert guard.on_loop == []


# -- concurrency -------------------------------------------------------------------------


class InFlight:
    """A handler that records the most requests it ever served at the same time."""

    def __init__(self, hold: float) -> None:
        self.hold = hold
        self.now = 0
        self.max = 0
        self.total = 0
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.now += 1
            self.total += 1
            self.max = max(self.max, self.now)
        try:
            time.sleep(self.hold)
        finally:
            with self.lock:
                self.now -= 1
        return Response('{"status": "ok"}', content_type="application/json")


def test_max_concurrency_bounds_requests_in_flight(tserver: HTTPServer) -> None:
    recorder = InFlight(hold=0.1)
    tserver.expect_request(P + "/health").respond_with_handler(recorder)

    async def main() -> List[Any]:
        async with AsyncClient("vg-k", base_url=tserver.url_for(P), max_concurrency=2, max_retries=0) as client:
            return await asyncio.gather(*[client.health() for _ in range(6)])

    results = run(main())
    assert results == [{"status": "ok"}] * 6
    assert recorder.total == 6
    assert recorder.max == 2


def test_concurrent_calls_really_overlap(tserver: HTTPServer) -> None:
    recorder = InFlight(hold=0.1)
    tserver.expect_request(P + "/models").respond_with_handler(recorder)

    async def main() -> List[Any]:
        async with AsyncClient("vg-k", base_url=tserver.url_for(P), max_retries=0) as client:
            return await asyncio.gather(*[client.models.list(limit=i + 1) for i in range(20)])

    results = run(main())
    assert len(results) == 20 and all(isinstance(r, ModelsResponse) for r in results)
    assert recorder.total == 20
    assert recorder.max > 1
