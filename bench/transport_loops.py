"""CPU per request of bare send-and-parse loops: the transport choice, measured.

Three loops send the same AIME prompts to `evals simulate` (another process) and parse each
JSON answer, nothing else (no store, no grading):

* ``aiohttp``: aiohttp's client, as in bench/throughput.py's baseline;
* ``httpx-aiohttp``: httpx's ``AsyncClient`` over httpx-aiohttp's transport (what the
  OpenAI Python SDK uses for its aiohttp backend), a plain ``client.post`` per request;
* ``ChatClient``: the harness's client (``evals.client.ChatClient.complete``) on its
  default transport, the same httpx-aiohttp transport with the harness's own request
  building, retries bookkeeping and answer parsing.

All three run under uvloop, as ``evals run`` does (``--asyncio`` for the standard loop).
Prints the median CPU ms per request of each, and its ratio to aiohttp's in the same run.
Pinned as bench/throughput.py pins (``--no-pin`` to let the scheduler place them). Usage:

    python bench/transport_loops.py [--repeats 3] [--latency-ms 200] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from throughput import DEFAULT_DATA, _pinned, core_sets, start_simulator

PRELUDE = r'''
import asyncio, json, sys, time
import orjson
url, conc, total, prompts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
def body(i):
    return {"model": "bare", "messages": [{"role": "user", "content": prompts[i % len(prompts)]}], "seed": i}
async def drive(send):
    it = iter(range(total))
    async def worker():
        for i in it:
            await send(i)
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    print(json.dumps({"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}))
def start(main):
    if sys.argv[5] == "uvloop":
        import uvloop
        uvloop.run(main())
    else:
        asyncio.run(main())
'''

AIOHTTP_LOOP = PRELUDE + r'''
import aiohttp
async def main():
    conn = aiohttp.TCPConnector(limit=conc, limit_per_host=conc)
    async with aiohttp.ClientSession(connector=conn) as s:
        async def send(i):
            async with s.post(url, data=orjson.dumps(body(i)),
                              headers={"content-type": "application/json"}) as r:
                orjson.loads(await r.read())
        await drive(send)
start(main)
'''

HTTPX_AIOHTTP_LOOP = PRELUDE + r'''
import httpx
from httpx_aiohttp import AiohttpTransport
async def main():
    limits = httpx.Limits(max_connections=conc, max_keepalive_connections=conc)
    async with httpx.AsyncClient(transport=AiohttpTransport(limits=limits), timeout=600) as c:
        async def send(i):
            r = await c.post(url, content=orjson.dumps(body(i)),
                             headers={"content-type": "application/json"})
            orjson.loads(r.content)
        await drive(send)
start(main)
'''

CHATCLIENT_LOOP = PRELUDE + r'''
from evals.client import ChatClient
from evals.providers import Endpoint
async def main():
    endpoint = Endpoint(provider="custom", base_url=url.removesuffix("/chat/completions"),
                        key_env=None)
    async with ChatClient(endpoint, concurrency=conc) as client:
        async def send(i):
            await client.complete(body(i))
        await drive(send)
start(main)
'''

LOOPS = {"aiohttp": AIOHTTP_LOOP, "httpx-aiohttp": HTTPX_AIOHTTP_LOOP,
         "ChatClient": CHATCLIENT_LOOP}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--asyncio", action="store_true", help="the standard event loop")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    sim_cores, client_cores = core_sets(not args.no_pin)
    prompts = json.dumps([json.loads(line)["problem"]
                          for line in args.data.read_text().splitlines() if line.strip()])
    loop = "asyncio" if args.asyncio else "uvloop"
    cpu: dict[str, list[float]] = {name: [] for name in LOOPS}
    wall: dict[str, list[float]] = {name: [] for name in LOOPS}
    with tempfile.TemporaryDirectory() as tmp:
        sim, url = start_simulator(args.data, args.latency_ms, Path(tmp) / "log.jsonl",
                                   sim_cores)
        try:
            for _ in range(args.repeats):
                for name, code in LOOPS.items():
                    out = subprocess.run(
                        [sys.executable, "-c", code, url + "/chat/completions",
                         str(args.concurrency), str(args.requests), prompts, loop],
                        capture_output=True, text=True, check=True,
                        preexec_fn=_pinned(client_cores))
                    result = json.loads(out.stdout)
                    cpu[name].append(1000 * result["cpu_s"] / args.requests)
                    wall[name].append(result["wall_s"])
        finally:
            sim.terminate()
            sim.wait(10)
    print(f"{args.requests} requests at {args.latency_ms:.0f} ms, {args.concurrency} in "
          f"flight, {loop}, medians of {args.repeats}, "
          f"{'pinned' if client_cores else 'not pinned'}")
    base = statistics.median(cpu["aiohttp"])
    ideal = args.requests * args.latency_ms / 1000 / args.concurrency
    for name, values in cpu.items():
        median = statistics.median(values)
        eff = ideal / statistics.median(wall[name]) if ideal else float("nan")
        print(f"{name:>14}: {median:.3f} CPU ms per request ({median / base:.2f} x aiohttp), "
              f"efficiency {eff:.2f}")


if __name__ == "__main__":
    main()
