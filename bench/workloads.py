"""Child-process snippets, run as ``python -c SNIPPET PARAMS_JSON``.

Every snippet prints one tab-separated line: ``visgate_sdk.__file__``, the
measured value (or nothing when the parent times the whole process) and the
third-party HTTP modules the process ended up importing (the runner uses it to
prove ours never touches the reference venv's httpx). The import-only snippets
stay minimal because the parent times the whole process.
"""
from __future__ import annotations

BARE = "pass"

IMPORT = "import sys, visgate_sdk; sys.stdout.write(visgate_sdk.__file__)"

# Shared tail: report the module file, a value and any leaked third-party modules.
_REPORT = """
_leak = {m.split(".")[0] for m in sys.modules} & {"httpx", "httpcore", "h11", "anyio", "certifi", "sniffio"}
sys.stdout.write("%s\\t%s\\t%s" % (visgate_sdk.__file__, VALUE, ",".join(sorted(_leak))))
"""

# Peak RSS in KiB. On Linux ru_maxrss carries the *parent's* high-water mark
# across fork+exec (it would report the runner's size), so read VmHWM there.
_PEAK_RSS = """
def peak_rss_kib():
    try:
        with open("/proc/self/status") as f:
            return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
"""

BARE_MEMORY = "import sys" + _PEAK_RSS + """sys.stdout.write("-\\t%d\\t" % peak_rss_kib())"""

MEMORY = "import sys, visgate_sdk" + _PEAK_RSS + "VALUE = peak_rss_kib()" + _REPORT

COLD_START = """
import sys, json
from visgate_sdk import Client
P = json.loads(sys.argv[1])
client = Client(api_key="vg-bench", base_url=P["url"], timeout=30, max_retries=0)
assert client.health()["status"] == "ok"
client.close()
import visgate_sdk
""" + _PEAK_RSS + "VALUE = peak_rss_kib()" + _REPORT

# Shared head for the throughput snippets: parameters and client construction.
_SETUP = """
import asyncio, inspect, json, statistics, sys, time
import visgate_sdk
P = json.loads(sys.argv[1])

def make(cls):
    kw = dict(api_key="vg-bench", base_url=P["url"], timeout=30, max_retries=0)
    accepted = inspect.signature(cls).parameters  # pass ours' extras only where they exist
    any_kw = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    kw.update((k, v) for k, v in P["ours_kwargs"].items() if any_kw or k in accepted)
    return cls(**kw)

def model_id(m):
    return m["id"] if isinstance(m, dict) else m.id
"""

SYNC_SEQUENTIAL = _SETUP + """
client = make(visgate_sdk.Client)
assert model_id(client.models.get("fal-ai/flux/schnell")) == "fal-ai/flux/schnell"
for _ in range(P["warmup"]):
    assert client.health()["status"] == "ok"
health = client.health
t0 = time.perf_counter()
for _ in range(P["calls"]):
    health()
VALUE = P["calls"] / (time.perf_counter() - t0)
client.close()
""" + _REPORT

ASYNC_SEQUENTIAL = _SETUP + """
async def main():
    async with make(visgate_sdk.AsyncClient) as client:
        assert model_id(await client.models.get("fal-ai/flux/schnell")) == "fal-ai/flux/schnell"
        for _ in range(P["warmup"]):
            assert (await client.health())["status"] == "ok"
        t0 = time.perf_counter()
        for _ in range(P["calls"]):
            await client.health()
        return P["calls"] / (time.perf_counter() - t0)
VALUE = asyncio.run(main())
""" + _REPORT

FAN_OUT = _SETUP + """
async def main():
    client = make(visgate_sdk.AsyncClient)
    t0 = time.perf_counter()
    results = await asyncio.gather(*(client.health() for _ in range(P["calls"])))
    wall = time.perf_counter() - t0
    assert all(r["status"] == "ok" for r in results)
    await client.close()
    return wall
VALUE = asyncio.run(main())
""" + _REPORT

# The floor: a hand-written keep-alive http.client loop returning the same dict.
RAW_HTTP_CLIENT = """
import http.client, json, ssl, sys, time
from urllib.parse import urlsplit
P = json.loads(sys.argv[1])
u = urlsplit(P["url"])
if u.scheme == "https":
    conn = http.client.HTTPSConnection(u.hostname, u.port, timeout=30,
                                       context=ssl.create_default_context(cafile=P["ca"]))
else:
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
path = u.path + "/health"
headers = {"Authorization": "Bearer vg-bench", "Accept": "application/json"}

def health():
    conn.request("GET", path, headers=headers)
    return json.loads(conn.getresponse().read())

for _ in range(P["warmup"]):
    assert health()["status"] == "ok"
t0 = time.perf_counter()
for _ in range(P["calls"]):
    health()
sys.stdout.write("-\\t%s\\t" % (P["calls"] / (time.perf_counter() - t0)))
"""

# Batch: P["calls"] prompts through the generate endpoint, at most P["concurrency"] in flight.
# Ours uses Client.generate_many (reports "n/a" while the method does not exist); the
# reference has no batch API, so it is the loop its users would write: AsyncClient,
# asyncio.gather and an asyncio.Semaphore. Both time the batch on a fresh client.
BATCH_OURS = _SETUP + """
def failed(r):
    return isinstance(r, BaseException) or getattr(r, "error", None) is not None

if not hasattr(visgate_sdk.Client, "generate_many"):
    VALUE = "n/a"
else:
    items = ["bench prompt %d" % i for i in range(P["calls"])]
    client = make(visgate_sdk.Client)
    t0 = time.perf_counter()
    results = client.generate_many(items, max_concurrency=P["concurrency"])
    VALUE = time.perf_counter() - t0
    client.close()
    assert len(results) == len(items), "%d results for %d items" % (len(results), len(items))
    bad = [r for r in results if failed(r)]
    assert not bad, "%d of %d items failed, first: %r" % (len(bad), len(items), bad[0])
    echoed = [getattr(r, "raw", None) or {} for r in results]  # the server echoes the prompt
    assert all(e.get("prompt", p) == p for e, p in zip(echoed, items)), "results out of input order"
""" + _REPORT

BATCH_REF = _SETUP + """
async def main():
    items = ["bench prompt %d" % i for i in range(P["calls"])]
    client = make(visgate_sdk.AsyncClient)
    semaphore = asyncio.Semaphore(P["concurrency"])

    async def one(prompt):
        async with semaphore:
            return await client.generate(prompt)

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one(p) for p in items), return_exceptions=True)
    wall = time.perf_counter() - t0
    await client.close()
    bad = [r for r in results if isinstance(r, BaseException)]
    assert not bad, "%d of %d items failed, first: %r" % (len(bad), len(items), bad[0])
    return wall
VALUE = asyncio.run(main())
""" + _REPORT
