"""Result types are real dataclasses although ``dataclasses`` is imported only on first use."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import visgate_sdk
from visgate_sdk import GenerateResult, ImageResult, ModelInfo, ModelsResponse, Retry

ROOT = Path(__file__).resolve().parent.parent


def run_fresh(code: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_import_does_not_build_dataclasses():
    out = run_fresh("import sys, visgate_sdk; print('dataclasses' in sys.modules)")
    assert out == "False"


def test_dataclass_introspection_works_before_any_instance():
    code = (
        "import dataclasses, visgate_sdk as v\n"
        "print(dataclasses.is_dataclass(v.ImageResult))\n"
        "print([f.name for f in dataclasses.fields(v.ImageResult)][:3])\n"
    )
    assert run_fresh(code).splitlines() == ["True", "['id', 'images', 'model']"]


def test_signature_and_help_show_the_fields_before_any_instance():
    code = (
        "import inspect, pydoc, visgate_sdk as v\n"
        "print(list(inspect.signature(v.ImageResult).parameters)[:3])\n"
        "print(list(inspect.signature(v.UsageSummary).parameters)[-1])\n"
        "doc = pydoc.render_doc(v.VideoResult, renderer=pydoc.plaintext)\n"
        "print(\"video_url: 'Optional[str]' = None\" in doc, '*args' in doc)\n"
    )
    assert run_fresh(code).splitlines() == ["['id', 'images', 'model']", "raw", "True False"]


def test_a_subclass_of_a_result_type_before_any_instance():
    code = (
        "import visgate_sdk as v\n"
        "class Mine(v.ImageResult):\n    pass\n"
        "print(Mine('i', ['u']).image_url, Mine.from_dict({'request_id': 'r'}).id)\n"
    )
    assert run_fresh(code) == "u r"


def test_every_result_type_is_a_dataclass_with_raw_last():
    for name in visgate_sdk.__all__:
        obj = getattr(visgate_sdk, name)
        if isinstance(obj, type) and issubclass(obj, visgate_sdk._Result):
            assert dataclasses.is_dataclass(obj), name
            assert dataclasses.fields(obj)[-1].name == "raw", name


def test_asdict_replace_and_equality():
    a = ImageResult(id="1", images=["u"], model="m", provider="fal", cost=0.5)
    b = dataclasses.replace(a, cost=0.0, cache_hit=True)
    assert dataclasses.asdict(b)["cache_hit"] is True and b.cost == 0.0
    assert ImageResult.from_dict({"id": "1", "images": ["u"], "model": "m", "provider": "fal", "cost": 0.5}) == a


def test_positional_construction_matches_the_reference_order():
    info = ModelInfo("fal-ai/flux/schnell", "FLUX schnell", "fal", "image")
    assert (info.id, info.name, info.provider, info.media_type) == ("fal-ai/flux/schnell", "FLUX schnell", "fal", "image")


def test_pickle_round_trip_in_a_fresh_process():
    result = ModelsResponse.from_dict({"models": [{"id": "a/b", "name": "A"}], "total_count": 1, "extra": 7})
    blob = pickle.dumps(result)
    code = (
        "import pickle, sys, visgate_sdk; r = pickle.loads(sys.stdin.buffer.read()); "
        "print(repr(r.models[0])[:28]); print(r.raw['extra'])"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().splitlines() == ["ModelInfo(id='a/b', name='A'", "7"]


def test_type_hints_resolve():
    hints = typing.get_type_hints(GenerateResult)
    assert hints["created_at"] == typing.Optional[visgate_sdk.datetime]
    assert hints["images"] == typing.List[str]


def test_retry_is_an_immutable_value():
    retry = Retry(total=3, backoff_factor=0.1)
    assert retry.replace(total=1) == Retry(total=1, backoff_factor=0.1)
    assert hash(retry) == hash(Retry(total=3, backoff_factor=0.1))
    try:
        retry.total = 9  # type: ignore[misc]
    except AttributeError as exc:
        assert "replace" in str(exc)
    else:
        raise AssertionError("Retry accepted an assignment")
    assert retry.total == 3
    assert "backoff_factor=0.1" in repr(retry)


def test_a_pickled_result_leaves_its_client_behind():
    client = visgate_sdk.Client(api_key="vg-secret-key-123")
    try:
        result = client._attach(ImageResult.from_dict({"id": "i", "images": ["https://x/1.png"]}))
        blob = pickle.dumps(result)
    finally:
        client.close()
    assert b"vg-secret-key-123" not in blob and result._client is client
    code = "import pickle, sys, visgate_sdk; r = pickle.loads(sys.stdin.buffer.read()); print(r._client, r.image_url, r == r)"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split() == ["None", "https://x/1.png", "True"]


def test_first_use_from_many_threads_at_once():
    code = (
        "import threading, visgate_sdk as v\n"
        "barrier, out = threading.Barrier(8), []\n"
        "def work(i):\n"
        "    barrier.wait()\n"
        "    out.append(v.ModelsResponse.from_dict({'models': [{'id': str(i)}], 'total': i}).total_count)\n"
        "threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(sorted(out))\n"
    )
    assert run_fresh(code) == str(list(range(8)))


def test_the_shared_base_is_not_a_result_type():
    with pytest.raises(TypeError, match="_Result is not a result type"):
        visgate_sdk._Result()
