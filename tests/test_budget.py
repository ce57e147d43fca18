"""The spending cap: Client(budget_usd=...), client.spent_usd, BudgetExceededError before anything
is sent, cache hits cost nothing, every generate call counted in one place, 32 threads, the async
client, the per-batch budget enforced by the coordinating process, and a pickled copy's budget."""

from __future__ import annotations

import asyncio
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Dict, Iterator, List

import pytest

from visgate_emulator import DEMO_API_KEY, Emulator
from visgate_sdk import AsyncClient, BudgetExceededError, Client, ValidationError, VisgateError

COST = 0.003461  # what the emulator bills for one 1024x1024 fal-ai/flux/schnell image (managed)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def make(emu: Emulator, **options: Any) -> Client:
    return Client(DEMO_API_KEY, base_url=emu.base_url, **options)


def billed(client: Client) -> List[Dict[str, Any]]:
    return [entry for entry in client.usage.logs(limit=1000) if entry["cost"] > 0]


def test_the_budget_refuses_once_spent_and_sends_nothing(emu: Emulator) -> None:
    with make(emu, budget_usd=0.01) as client:
        assert client.spent_usd == 0.0
        results = [client.generate("budget prompt %s" % word) for word in ("one", "two", "three")]
        assert client.spent_usd == pytest.approx(sum(r.cost for r in results)) == pytest.approx(3 * COST)
        with pytest.raises(BudgetExceededError) as caught:
            client.generate("budget prompt four")
        error = caught.value
        assert isinstance(error, VisgateError) and error.error_code == "BUDGET_EXCEEDED" and error.status_code is None
        assert error.details["budget_usd"] == 0.01 and error.details["spent_usd"] == pytest.approx(3 * COST)
        assert "nothing was sent" in str(error)
        assert len(client.usage.logs(limit=100)) == 3  # the fourth never reached the server


def test_a_zero_budget_refuses_everything(emu: Emulator) -> None:
    with make(emu, budget_usd=0) as client:
        for call in (lambda: client.generate("x"), lambda: client.images.generate("fal-ai/flux/schnell", "x"),
                     lambda: client.videos.generate("fal-ai/flux-pro/video", "x")):
            with pytest.raises(BudgetExceededError):
                call()
        assert client.usage.logs() == []


def test_cache_hits_cost_nothing(emu: Emulator) -> None:
    with make(emu, budget_usd=1.0) as client:
        first = client.generate("a cached lighthouse")
        second = client.generate("a cached lighthouse")
        assert second.cache_hit and client.spent_usd == pytest.approx(first.cost)


def test_images_and_videos_are_counted_in_the_same_place(emu: Emulator) -> None:
    with make(emu, budget_usd=5.0) as client:
        image = client.images.generate("fal-ai/flux/schnell", "a counted image", width=512, height=512)
        video = client.videos.generate("fal-ai/flux-pro/video", "a counted video", duration_seconds=2.0)
        assert image.cost > 0 and video.cost > 0
        assert client.spent_usd == pytest.approx(image.cost + video.cost)
        assert client.spent_usd == pytest.approx(sum(e["cost"] for e in billed(client)))
        # A job (202, then polled: any generation with a deadline) counts what its final status
        # reports; the emulator's status has no cost, so it adds nothing (a documented limit).
        job = client.images.generate("fal-ai/flux/schnell", "a counted job", deadline=30.0)
        assert client.spent_usd == pytest.approx(image.cost + video.cost + job.cost)


def test_no_budget_means_no_limit_but_spending_is_still_counted(emu: Emulator) -> None:
    with make(emu) as client:
        client.generate("an unlimited sparrow")
        assert client.spent_usd == pytest.approx(COST)


@pytest.mark.parametrize("value", [-0.01, "5", float("inf"), True])
def test_a_bad_budget_is_a_validation_error(value: Any) -> None:
    with pytest.raises(ValidationError, match="budget_usd"):
        Client("vg-k", budget_usd=value)


def test_32_threads_share_one_tally_and_overshoot_by_at_most_what_was_in_flight(emu: Emulator) -> None:
    budget = 0.05  # about 14 images
    with make(emu, budget_usd=budget) as client:
        costs: List[float] = []
        refused = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            for k in range(10):
                try:
                    result = client.generate("thread %s call %s" % ("t" * (n + 1), "k" * (k + 1)))
                except BudgetExceededError:
                    with lock:
                        refused.append(n)
                    return
                with lock:
                    costs.append(result.cost)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(refused) == 32  # every thread was stopped by the cap
        assert client.spent_usd == pytest.approx(sum(costs))  # no lost update
        assert budget <= client.spent_usd <= budget + 32 * COST  # in-flight calls may overshoot, by their cost at most
        assert client.spent_usd == pytest.approx(sum(e["cost"] for e in billed(client)))


def test_the_async_client_has_the_budget_too(emu: Emulator) -> None:
    async def main() -> None:
        async with AsyncClient(DEMO_API_KEY, base_url=emu.base_url, budget_usd=0.003) as aclient:
            await aclient.generate("an async heron")
            assert aclient.spent_usd == pytest.approx(COST)
            with pytest.raises(BudgetExceededError):
                await aclient.generate("an async crane")

    asyncio.run(main())


def test_the_batch_budget_stops_submitting(emu: Emulator) -> None:
    with make(emu) as client:
        result = client.generate_many(["batch budget %s" % ("b" * (i + 1)) for i in range(10)], budget_usd=0.01,
                                      max_concurrency=1)
        assert result.succeeded == [0, 1, 2] and result.not_run == list(range(3, 10))
        assert all(isinstance(result[i], BudgetExceededError) for i in result.not_run)
        assert "the batch's budget_usd" in str(result[3])
        assert len(billed(client)) == 3


def test_the_batch_budget_overshoots_by_at_most_the_items_in_flight(emu: Emulator) -> None:
    with make(emu) as client:
        result = client.generate_many(["overshoot %s" % ("o" * (i + 1)) for i in range(20)], budget_usd=0.01,
                                      max_concurrency=4, headers={"X-Emulator-Fault": "delay=0.1"})
        assert 3 <= len(result.succeeded) <= 3 + 4
        assert result.cost <= 0.01 + 4 * COST


def test_the_clients_budget_stops_a_batch(emu: Emulator) -> None:
    with make(emu, budget_usd=0.006) as client:
        result = client.generate_many(["client budget %s" % ("c" * (i + 1)) for i in range(6)], max_concurrency=1)
        assert result.succeeded == [0, 1] and result.not_run == [2, 3, 4, 5]
        assert client.spent_usd == pytest.approx(2 * COST)


def test_with_worker_processes_the_coordinator_enforces_and_counts(emu: Emulator) -> None:
    with make(emu, budget_usd=0.006) as client, ProcessPoolExecutor(2) as pool:
        result = client.generate_many(["worker budget %s" % ("w" * (i + 1)) for i in range(6)], executor=pool,
                                      max_concurrency=1)
        assert result.succeeded == [0, 1] and result.not_run == [2, 3, 4, 5]
        assert client.spent_usd == pytest.approx(2 * COST)  # reported back, counted here


def test_a_pickled_copy_may_spend_what_was_left(emu: Emulator) -> None:
    with make(emu, budget_usd=0.01) as client:
        client.generate("a pickled budget")
        copy = pickle.loads(pickle.dumps(client))
        assert copy._budget.limit == pytest.approx(0.01 - COST)
        assert copy.spent_usd == 0.0  # its own tally
    with make(emu) as unlimited:
        assert pickle.loads(pickle.dumps(unlimited))._budget.limit is None
