"""client.generate_many / iter_generate_many against the emulator: order, typed per-item errors,
checks before sending, concurrency bound, deadline (NOT_RUN, accepted jobs keep request_id),
deterministic Idempotency-Keys (a SIGKILLed batch rerun bills each item once), pickling of the
client, results and errors, ProcessPoolExecutor (fork and spawn), the async client, and speed."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import multiprocessing
import os
import pickle
import signal
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator, List

import pytest

from visgate_emulator import DEMO_API_KEY, Emulator
from visgate_sdk import (
    AsyncClient,
    BatchIterator,
    BatchResult,
    BudgetExceededError,
    Client,
    GenerateResult,
    ImageResult,
    ProviderError,
    Retry,
    TimeoutError,
    ValidationError,
    VideoResult,
    VisgateError,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DELAY = {"X-Emulator-Fault": "delay=0.3"}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[Client]:
    with Client(DEMO_API_KEY, base_url=emu.base_url, max_retries=Retry(total=1, backoff_factor=0.001)) as made:
        yield made


def billed_logs(client: Client) -> List[Dict[str, Any]]:
    return client.usage.logs(limit=1000)


def prompts(n: int, tag: str = "item") -> List[str]:
    # Distinct words per item: the emulator's cache ignores word order and case.
    return ["%s %s number %d" % (tag, "x" * (i + 1), i) for i in range(n)]


# -- results, order, typed errors ------------------------------------------------------


def test_results_come_back_in_input_order_with_typed_errors(client: Client) -> None:
    items = prompts(6)
    items[3] = "this one breaks [fail]"
    result = client.generate_many(items, max_concurrency=3)
    assert isinstance(result, BatchResult) and isinstance(result, list) and len(result) == 6
    assert isinstance(result[3], ProviderError) and isinstance(result[3], VisgateError)
    for i in (0, 1, 2, 4, 5):
        assert isinstance(result[i], GenerateResult)
        assert result[i]._client is client  # save() goes through this client
    assert result.succeeded == [0, 1, 2, 4, 5] and result.failed == [3] and result.not_run == []
    assert result.cost == pytest.approx(sum(result[i].cost for i in result.succeeded))
    assert len(result.batch_id) == 32
    assert "succeeded=5" in repr(result) and "failed=1" in repr(result)
    again = pickle.loads(pickle.dumps(result))
    assert type(again) is BatchResult and [type(x) for x in again] == [type(x) for x in result]
    assert again.batch_id == result.batch_id and again.failed == [3] and again[0].id == result[0].id


def test_kinds_image_and_video_take_dicts_of_their_arguments(client: Client) -> None:
    images = client.generate_many([{"prompt": "a lighthouse", "width": 512, "height": 512}, "a harbour at dawn"], kind="image")
    assert [type(r) for r in images] == [ImageResult, ImageResult]
    videos = client.generate_many([{"prompt": "waves", "duration_seconds": 2.0}], kind="video")
    assert isinstance(videos[0], VideoResult) and videos[0].video_url
    generated = client.generate_many([{"prompt": "a bridge", "model": "fal-ai/flux/schnell", "params": {"steps": 4}}])
    assert isinstance(generated[0], GenerateResult)


def test_a_bad_argument_inside_an_item_is_that_items_error(client: Client) -> None:
    result = client.generate_many([{"prompt": "ok here"}, {"prompt": "bad width", "width": -5}], kind="image")
    assert isinstance(result[0], ImageResult)
    assert isinstance(result[1], ValidationError) and result[1].field == "width"
    assert result[1].attempts == 0, "refused before anything was sent"


@pytest.mark.parametrize(
    "items, options, message",
    [
        ("one string", {}, "list of prompts"),
        ([1, 2], {}, r"items\[0\] must be a prompt"),
        ([{"prompt": "x", "colour": "red"}], {}, "unknown arguments colour"),
        ([{"prompt": "x", "idempotency_key": "mine"}], {}, "unknown arguments idempotency_key"),
        ([{"model": "fal-ai/flux/schnell"}], {}, "has no prompt"),
        ([{"prompt": "x", "width": 5}], {}, "unknown arguments width"),  # kind="generate" has no width
        ([{"prompt": "x", "params": {"a": {1, 2}}}], {}, "cannot be sent as JSON"),
        (["x"], {"kind": "audio"}, "kind must be one of"),
        (["x"], {"max_concurrency": 0}, "max_concurrency"),
        (["x"], {"budget_usd": -1}, "budget_usd"),
        (["x"], {"deadline": float("nan")}, "deadline"),
        (["x"], {"batch_id": ""}, "batch_id"),
        (["x"], {"executor": object()}, "executor"),
        (["x"], {"headers": {"bad name": "v"}}, "invalid header name"),
    ],
)
def test_bad_input_is_refused_before_anything_is_sent(client: Client, items: Any, options: Dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        client.generate_many(items, **options)
    assert billed_logs(client) == []


# -- concurrency, iteration, deadline ----------------------------------------------------


def test_max_concurrency_bounds_requests_in_flight() -> None:
    with slow_server(0.1) as base_url, Client("vg-k", base_url=base_url) as client:
        result = client.generate_many(["p %d" % i for i in range(12)], max_concurrency=3)
    assert len(result.succeeded) == 12
    assert _Slow.peak == 3


def test_iterating_yields_each_item_as_it_lands(client: Client) -> None:
    batch = client.iter_generate_many(prompts(3), max_concurrency=1, headers=DELAY, batch_id="iter-1")
    assert isinstance(batch, BatchIterator) and batch.batch_id == "iter-1"
    started = time.monotonic()
    landed = []
    for index, outcome in batch:
        landed.append((index, time.monotonic() - started))
        assert batch.result[index] is outcome
    assert sorted(i for i, _ in landed) == [0, 1, 2]
    assert landed[0][1] < landed[-1][1] - 0.4  # the first came well before the last
    assert batch.result.succeeded == [0, 1, 2]


def test_closing_the_iterator_submits_nothing_more(client: Client) -> None:
    with client.iter_generate_many(prompts(10), max_concurrency=2, headers=DELAY) as batch:
        next(batch)
    time.sleep(0.5)  # what was in flight lands
    assert len(billed_logs(client)) <= 3


def test_items_not_started_by_the_deadline_are_not_run(client: Client) -> None:
    started = time.monotonic()
    result = client.generate_many(prompts(10), max_concurrency=2, deadline=0.8, headers=DELAY)
    assert time.monotonic() - started < 2.0
    assert 2 <= len(result.succeeded) <= 6
    assert result.not_run and result.not_run == list(range(result.not_run[0], 10))
    for i in result.not_run:
        assert isinstance(result[i], TimeoutError) and result[i].error_code == "NOT_RUN"
    time.sleep(0.4)  # items cut short by the deadline were sent: the server may still bill them
    assert len(result.succeeded) <= len(billed_logs(client)) <= len(result.succeeded) + len(result.failed)


def test_a_deadline_scope_bounds_the_batch_too(client: Client) -> None:
    with client.deadline(0.5):
        result = client.generate_many(prompts(8), max_concurrency=1, headers=DELAY)
    assert result.not_run


def test_accepted_jobs_cut_short_by_the_deadline_keep_their_request_id() -> None:
    with Emulator(job_seconds=30) as emu, Client(DEMO_API_KEY, base_url=emu.base_url) as client:
        result = client.generate_many(["slow one", "slow two"], kind="image", deadline=1.0)
    for error in result:
        assert isinstance(error, TimeoutError) and error.error_code == "DEADLINE_EXCEEDED"
        assert error.request_id and error.request_id.startswith("req_")  # resumable with client.requests.get()
    assert result.failed == [0, 1]


def test_skip_leaves_those_items_unrun(client: Client) -> None:
    result = client.generate_many(prompts(4), skip=[1, 2])
    assert result[1] is None and result[2] is None
    assert result.succeeded == [0, 3] and result.failed == [] and result.not_run == []
    assert len(billed_logs(client)) == 2


# -- restartable without double billing ----------------------------------------------------


def test_keys_are_derived_from_batch_id_index_and_arguments(client: Client) -> None:
    items = prompts(5)
    first = client.generate_many(items, batch_id="rerun-me")
    keys = [e["idempotency_key"] for e in billed_logs(client)]
    assert len(set(keys)) == 5 and all(k.startswith("vg-batch-") and len(k) == len("vg-batch-") + 32 for k in keys)
    again = client.generate_many(items, batch_id="rerun-me")
    assert len(billed_logs(client)) == 5  # replayed, not billed
    assert [r.id for r in again] == [r.id for r in first]
    client.generate_many(items, batch_id="another-batch")
    assert len(billed_logs(client)) == 10


KILLED_BATCH = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from visgate_sdk import Client
    client = Client("vg-emulator-demo-key", base_url=sys.argv[2])
    items = ["killed batch item %s %d" % ("y" * (i + 1), i) for i in range(20)]
    batch = client.iter_generate_many(items, batch_id="killed-batch", max_concurrency=3,
                                      headers={"X-Emulator-Fault": "delay=0.4"})
    for index, outcome in batch:
        print(index, type(outcome).__name__, flush=True)
    """
)


def test_a_killed_batch_rerun_bills_every_item_exactly_once(client: Client, emu: Emulator) -> None:
    proc = subprocess.Popen([sys.executable, "-c", KILLED_BATCH, ROOT, emu.base_url], stdout=subprocess.PIPE, text=True)
    try:
        landed = [proc.stdout.readline() for _ in range(7)]  # type: ignore[union-attr]
        assert all(line.split()[1] == "GenerateResult" for line in landed), landed
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
    assert proc.returncode == -signal.SIGKILL
    # Requests the dead process had in flight are still answered (and billed) by the server: wait
    # until the billing stops moving, so the rerun starts after them.
    before, settle_by = billed_logs(client), time.monotonic() + 10
    while time.monotonic() < settle_by:
        time.sleep(0.5)
        now = billed_logs(client)
        if len(now) == len(before):
            break
        before = now
    assert 7 <= len(before) < 20
    items = ["killed batch item %s %d" % ("y" * (i + 1), i) for i in range(20)]
    rerun = client.generate_many(items, batch_id="killed-batch", max_concurrency=3)
    assert rerun.succeeded == list(range(20)), [(i, rerun[i]) for i in rerun.failed]
    logs = billed_logs(client)
    per_key = collections.Counter(e["idempotency_key"] for e in logs)
    assert len(logs) == 20 and len(per_key) == 20 and set(per_key.values()) == {1}
    assert all(e["cache_hit"] is False and e["cost"] > 0 for e in logs)
    usage = client.usage.get()
    assert usage.total_requests == 20
    assert usage.total_billed_cost == pytest.approx(sum(e["cost"] for e in logs))


# -- pickling and executors ------------------------------------------------------------------


def test_a_client_pickles_as_its_configuration() -> None:
    original = Client("vg-secret-key-123", base_url="http://127.0.0.1:9/api/v1", timeout=7.0, max_retries=Retry(total=4),
                      fal_key="fal-secret", deadline=30.0, budget_usd=2.5, default_headers={"X-Team": "a"})
    data = pickle.dumps(original)
    copy = pickle.loads(data)
    assert copy is not original and pickle.loads(data) is copy  # one rebuilt client per original and process
    assert (copy.api_key, copy.base_url, copy.timeout, copy.max_retries) == ("vg-secret-key-123", original.base_url, 7.0, 4)
    assert copy._session.byok == {"X-Fal-Key": "fal-secret"} and copy._session.deadline == 30.0
    assert copy._session.default_headers == {"X-Team": "a"} and copy._budget.limit == 2.5
    assert "secret" not in repr(copy) and "secret" not in repr(original)
    assert pickle.loads(pickle.dumps(Retry(total=3, jitter=0.0))) == Retry(total=3, jitter=0.0)
    original.close()


def test_what_cannot_travel_is_refused_clearly() -> None:
    with Client("vg-k", verify=ssl.create_default_context()) as client:
        with pytest.raises(ValidationError, match="SSLContext"):
            pickle.dumps(client)
        with pytest.raises(ValidationError, match="SSLContext"):
            client.generate_many(["x"], executor=ProcessPoolExecutor(1))
    with Client("vg-k", hooks={"request": lambda e: None}) as client, pytest.raises(ValidationError, match="hooks"):
        pickle.dumps(client)


def test_results_and_errors_pickle(client: Client) -> None:
    result = client.generate_many(["a pickled cat", "a pickled dog [fail]"])
    ok, error = pickle.loads(pickle.dumps(result[0])), pickle.loads(pickle.dumps(result[1]))
    assert ok.image_url == result[0].image_url and ok._client is None
    assert type(error) is ProviderError and error.error_code == result[1].error_code


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_process_pool_runs_the_items(client: Client, method: str) -> None:
    items = prompts(6, tag="proc-" + method)
    items[2] = "process failure [fail]"
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
        result = client.generate_many(items, executor=pool, max_concurrency=4, batch_id="pool-" + method)
    assert result.failed == [2] and isinstance(result[2], ProviderError)
    assert result.succeeded == [0, 1, 3, 4, 5]
    for i in result.succeeded:
        assert result[i]._client is client  # attached on landing: save() uses this client
    assert client.spent_usd == pytest.approx(result.cost) and result.cost > 0
    assert len(billed_logs(client)) == 6
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(method)) as pool:
        rerun = client.generate_many(items, executor=pool, batch_id="pool-" + method)
    assert rerun.failed == [2]  # a failure is not stored: the rerun tries it again
    billed = [e for e in billed_logs(client) if e["cost"] > 0]
    assert len(billed) == 5  # the rest replayed from other processes: nothing billed twice


def test_a_thread_pool_executor_runs_items_on_this_client(client: Client) -> None:
    with ThreadPoolExecutor(4) as pool:
        result = client.generate_many(prompts(5, tag="threads"), executor=pool)
    assert result.succeeded == list(range(5))
    assert client.spent_usd == pytest.approx(result.cost)  # counted once, where the calls ran


def test_async_client_generate_many(emu: Emulator) -> None:
    async def main() -> BatchResult:
        async with AsyncClient(DEMO_API_KEY, base_url=emu.base_url, budget_usd=10.0) as aclient:
            result = await aclient.generate_many([*prompts(4, tag="async"), "async [fail]"], max_concurrency=2)
            assert aclient.spent_usd == pytest.approx(result.cost)
            return result

    result = asyncio.run(main())
    assert result.succeeded == [0, 1, 2, 3] and result.failed == [4]


def test_budget_refusals_are_not_run(client: Client) -> None:
    result = client.generate_many(prompts(3), budget_usd=0.0)
    assert result.not_run == [0, 1, 2] and all(isinstance(e, BudgetExceededError) for e in result)


# -- speed -------------------------------------------------------------------------------------


class _Slow(BaseHTTPRequestHandler):
    """Answers every POST /generate after ``latency`` seconds: a server with pure latency.
    Counts the requests it holds at once (``peak``)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    latency = 0.2
    lock = threading.Lock()
    now = peak = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with _Slow.lock:
            _Slow.now += 1
            _Slow.peak = max(_Slow.peak, _Slow.now)
        time.sleep(self.latency)
        with _Slow.lock:
            _Slow.now -= 1
        body = json.dumps({"id": "gen_1", "image_url": "http://127.0.0.1/x.png", "estimated_cost_usd": 0.001}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # 50 clients connect at once: the default backlog of 5 drops SYNs (1 s retransmits)


@contextlib.contextmanager
def slow_server(latency: float) -> Iterator[str]:
    _Slow.latency, _Slow.now, _Slow.peak = latency, 0, 0
    server = _Server(("127.0.0.1", 0), _Slow)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield "http://127.0.0.1:%d/api/v1" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def test_the_built_in_runner_keeps_every_slot_busy() -> None:
    with slow_server(0.2) as base_url, Client("vg-k", base_url=base_url) as client:
        client.generate_many(["warm"] * 50, max_concurrency=50)
        started = time.monotonic()
        result = client.generate_many(["p %d" % i for i in range(200)], max_concurrency=50)
        elapsed = time.monotonic() - started
    assert result.succeeded == list(range(200))
    assert elapsed < 0.8 * 1.5, elapsed  # ideal 200 / 50 * 0.2 s = 0.8 s; loose for a busy CI machine


def test_async_iteration_as_items_land(emu: Emulator) -> None:
    async def main() -> List[int]:
        async with AsyncClient(DEMO_API_KEY, base_url=emu.base_url) as aclient:
            batch = await aclient.iter_generate_many(prompts(4, tag="aiter"), batch_id="aiter-1", max_concurrency=2)
            assert batch.batch_id == "aiter-1"
            landed = [index async for index, outcome in batch if isinstance(outcome, GenerateResult)]
            assert batch.result.succeeded == [0, 1, 2, 3]
            with pytest.raises(ValidationError):
                await aclient.iter_generate_many([1])
            return sorted(landed)

    assert asyncio.run(main()) == [0, 1, 2, 3]


def test_a_client_pickled_without_a_key_takes_the_workers_key(monkeypatch: pytest.MonkeyPatch) -> None:
    with Client(base_url="http://127.0.0.1:9/api/v1") as keyless:  # no api_key=, no VISGATE_API_KEY here
        data = pickle.dumps(keyless)
    assert b"vg-worker" not in data
    monkeypatch.setenv("VISGATE_API_KEY", "vg-worker-key")  # as set on the worker machines
    assert pickle.loads(data).api_key == "vg-worker-key"


def test_closing_early_stops_items_in_flight_at_their_next_safe_point() -> None:
    def batch_threads() -> List[threading.Thread]:
        return [t for t in threading.enumerate() if t.name.startswith("visgate-batch")]

    with Emulator(job_seconds=30) as emu, Client(DEMO_API_KEY, base_url=emu.base_url) as client:
        items: List[Any] = [{"prompt": "bad", "width": 0}, "a slow job", "another slow job"]
        with client.iter_generate_many(items, kind="image", deadline=60, max_concurrency=3) as batch:
            index, outcome = next(batch)  # the bad item lands at once; two jobs are being polled
            assert index == 0 and isinstance(outcome, ValidationError)
            time.sleep(0.3)
            assert len(batch_threads()) >= 2
        gone_by = time.monotonic() + 2.0
        while batch_threads() and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert batch_threads() == []  # not polling for 30 s more


def test_an_empty_batch(client: Client) -> None:
    result = client.generate_many([])
    assert result == [] and result.succeeded == [] and result.cost == 0
