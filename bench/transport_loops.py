"""CPU per request of bare send-and-parse loops: the transport choice, measured.

Three loops send the same AIME prompts to `evals simulate` (another process) and parse each
JSON answer, nothing else (no store, no grading):

* ``aiohttp``: aiohttp's client, as in bench/throughput.py's baseline;
* ``protocol``: an asyncio protocol with httptools' parser under uvloop, the design
  ``evals.transport.HttpTransport`` is built on (the floor for it);
* ``HttpTransport``: the harness's transport through httpx's request and response objects,
  as ``ChatClient`` uses it.

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

from throughput import BARE_LOOP, DEFAULT_DATA, _pinned, core_sets, start_simulator

PROTOCOL_LOOP = r'''
import asyncio, json, sys, time
import httptools, httpx, orjson, uvloop
url, conc, total, prompts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
target = httpx.URL(url)
class Conn(asyncio.Protocol):
    def __init__(self):
        self.parser, self.waiter, self.body = httptools.HttpResponseParser(self), None, []
    def connection_made(self, transport): self.transport = transport
    def data_received(self, data): self.parser.feed_data(data)
    def on_body(self, body): self.body.append(body)
    def on_message_complete(self):
        body, self.body = b"".join(self.body), []
        self.waiter.set_result(body)
    def send(self, data):
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return self.waiter
async def main():
    loop = asyncio.get_running_loop()
    it = iter(range(total))
    async def worker():
        _, conn = await loop.create_connection(Conn, target.host, target.port)
        for i in it:
            body = orjson.dumps({"model": "bare", "messages": [{"role": "user", "content": prompts[i % len(prompts)]}], "seed": i})
            head = b"POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (target.raw_path, target.netloc, len(body))
            orjson.loads(await conn.send(head + body))
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    print(json.dumps({"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}))
uvloop.run(main())
'''

TRANSPORT_LOOP = r'''
import asyncio, json, sys, time
import httpx, orjson, uvloop
from evals.transport import HttpTransport
url, conc, total, prompts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
target = httpx.URL(url)
headers = [(b"Host", target.netloc), (b"content-type", b"application/json")]
async def main():
    transport = HttpTransport(max_idle=conc)
    it = iter(range(total))
    async def worker():
        for i in it:
            body = orjson.dumps({"model": "bare", "messages": [{"role": "user", "content": prompts[i % len(prompts)]}], "seed": i})
            request = httpx.Request("POST", target, headers=[*headers, (b"Content-Length", b"%d" % len(body))],
                                    stream=httpx.ByteStream(body), extensions={"evals.stream": False})
            response = await transport.handle_async_request(request)
            orjson.loads(b"".join(response.stream))
    c0, w0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(conc)))
    print(json.dumps({"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - w0}))
    await transport.aclose()
uvloop.run(main())
'''

LOOPS = {"aiohttp": BARE_LOOP, "protocol": PROTOCOL_LOOP, "HttpTransport": TRANSPORT_LOOP}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    sim_cores, client_cores = core_sets(not args.no_pin)
    prompts = json.dumps([json.loads(line)["problem"]
                          for line in args.data.read_text().splitlines() if line.strip()])
    cpu: dict[str, list[float]] = {name: [] for name in LOOPS}
    with tempfile.TemporaryDirectory() as tmp:
        sim, url = start_simulator(args.data, args.latency_ms, Path(tmp) / "log.jsonl",
                                   sim_cores)
        try:
            for _ in range(args.repeats):
                for name, code in LOOPS.items():
                    out = subprocess.run(
                        [sys.executable, "-c", code, url + "/chat/completions",
                         str(args.concurrency), str(args.requests), prompts],
                        capture_output=True, text=True, check=True,
                        preexec_fn=_pinned(client_cores))
                    cpu[name].append(1000 * json.loads(out.stdout)["cpu_s"] / args.requests)
        finally:
            sim.terminate()
            sim.wait(10)
    print(f"{args.requests} requests at {args.latency_ms:.0f} ms, {args.concurrency} in "
          f"flight, medians of {args.repeats}, "
          f"{'pinned' if client_cores else 'not pinned'}")
    base = statistics.median(cpu["aiohttp"])
    for name, values in cpu.items():
        median = statistics.median(values)
        print(f"{name:>14}: {median:.3f} CPU ms per request ({median / base:.2f} x aiohttp)")


if __name__ == "__main__":
    main()
