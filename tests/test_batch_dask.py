"""generate_many on a real dask.distributed cluster (2 worker processes, 2 threads each) against
the emulator: the client travels pickled as its configuration, results and errors come back
typed, the coordinator counts the cost, and a rerun with the same batch id bills nothing twice."""

from __future__ import annotations

from typing import Iterator

import pytest
from distributed import Client as DaskClient
from distributed import LocalCluster

from visgate_emulator import DEMO_API_KEY, Emulator
from visgate_sdk import BudgetExceededError, Client, GenerateResult, ProviderError


@pytest.fixture(scope="module")
def dask_executor() -> Iterator[object]:
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=2, dashboard_address=None,
                      host="127.0.0.1") as cluster, DaskClient(cluster) as dask:
        yield dask.get_executor()


def test_a_dask_cluster_runs_a_batch_and_a_rerun_bills_nothing_twice(dask_executor: object) -> None:
    items = ["dask item %s %d" % ("d" * (i + 1), i) for i in range(12)]
    items[5] = "dask failure [fail]"
    with Emulator() as emu, Client(DEMO_API_KEY, base_url=emu.base_url) as client:
        result = client.generate_many(items, executor=dask_executor, max_concurrency=4, batch_id="dask-1")
        assert result.failed == [5] and isinstance(result[5], ProviderError)
        assert result.succeeded == [i for i in range(12) if i != 5]
        assert all(isinstance(result[i], GenerateResult) and result[i]._client is client for i in result.succeeded)
        assert client.spent_usd == pytest.approx(result.cost) and result.cost > 0
        billed = [e for e in client.usage.logs(limit=100) if e["cost"] > 0]
        assert len(billed) == 11
        rerun = client.generate_many(items, executor=dask_executor, max_concurrency=4, batch_id="dask-1")
        assert rerun.succeeded == result.succeeded
        assert [e for e in client.usage.logs(limit=100) if e["cost"] > 0] == billed


def test_the_batch_budget_is_enforced_by_the_coordinator(dask_executor: object) -> None:
    with Emulator() as emu, Client(DEMO_API_KEY, base_url=emu.base_url) as client:
        items = ["dask budget %s" % ("b" * (i + 1)) for i in range(6)]
        result = client.generate_many(items, executor=dask_executor, max_concurrency=1, budget_usd=0.006)
        assert result.succeeded == [0, 1] and result.not_run == [2, 3, 4, 5]
        assert all(isinstance(result[i], BudgetExceededError) for i in result.not_run)
        assert len(client.usage.logs(limit=100)) == 2
