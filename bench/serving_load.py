"""The load side of ``bench/bench_serving.py``: processes pinned to a CPU, their CPU seconds, the
static ceiling (a bare aiohttp app), wrk, the open-loop fixed-rate client and the service's counters.

``static_server`` and ``fixed_rate`` run this file in a child process (``--static-server PORT``,
``--fixed-rate-client SPEC``), so each runs on its own core, apart from the process timing it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVER_CPU, LOAD_CPU = 0, 1


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LOG = REPO / "var" / "bench" / "serving.log"


def start(argv: list[str], env: dict[str, str], port: int, cpu: int) -> subprocess.Popen[bytes]:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("ab") as log:  # a file, not a pipe: a full pipe would stall the server
        process = subprocess.Popen(["taskset", "-c", str(cpu), *argv], env=env, cwd=REPO,
                                   stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 30
    import urllib.request

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{argv} exited: see {LOG}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"{argv} did not answer on port {port}")


def cpu_seconds(process: subprocess.Popen[bytes]) -> float:
    """User + system CPU of the server so far (taskset execs it, so the pid is the server's)."""
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()



def static_server() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return start([sys.executable, str(Path(__file__)), "--static-server", str(port)], env, port, SERVER_CPU), port


def run_static_server(port: int) -> None:
    """A bare aiohttp app answering a fixed ~2 KB JSON document: the ceiling of any handler."""
    from aiohttp import web

    body = json.dumps({"items": [{"video_id": f"v{i}", "title": "x" * 40} for i in range(32)]}).encode()[:2048]

    async def static(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/static.json", static)
    app.router.add_get("/healthz", static)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)



WRK_SCRIPT = """
local paths = {%s}
local i = 0
wrk.headers["Authorization"] = "Bearer %s"
%s
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
"""


def wrk(port: int, paths: list[str], token: str, seconds: int, headers: dict[str, str] | None = None) -> dict[str, float]:
    extra = "\n".join(f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in (headers or {}).items())
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(WRK_SCRIPT % (",".join(json.dumps(p) for p in paths), token, extra))
        script = f.name
    try:
        out = subprocess.run(["taskset", "-c", str(LOAD_CPU), "wrk", "-t1", "-c32", f"-d{seconds}s", "-s", script,
                              f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": round(rps), "requests": total, "non_2xx": int(errors.group(1)) if errors else 0}


def measured(server: subprocess.Popen[bytes], port: int, run, *args):  # type: ignore[no-untyped-def]
    """``run(port, *args)``'s result plus, for that phase only, the server's CPU microseconds per
    request, the feed cache hit ratio and the share of degraded feeds."""
    before, seen = cpu_seconds(server), counters(port)
    result = run(port, *args)
    after = counters(port)
    requests = max(result["requests"], 1)
    result["server_cpu_us_per_req"] = round((cpu_seconds(server) - before) / requests * 1e6)
    lookups = sum(after[k] - seen[k] for k in ("hit", "miss", "stale"))
    if lookups:
        result["cache_hit_ratio"] = round((after["hit"] - seen["hit"]) / lookups, 3)
        # Requests still in flight from the previous phase can land here: clamp to [0, 1].
        result["degraded_ratio"] = round(min(1.0, (after["degraded"] - seen["degraded"]) / requests), 3)
    assembled = sum(after[k] - seen[k] for k in ("nearline", "live"))
    if assembled:  # of the feeds assembled, the share that served the nearline picks as they are
        result["nearline_picks_ratio"] = round((after["nearline"] - seen["nearline"]) / assembled, 3)
    return result


def fixed_rate(port: int, paths: list[str], token: str, rate: int, seconds: float,
               warm: bool = True) -> dict[str, float]:
    """Runs the open-loop client in its own process on the load CPU (``rate`` 0: sequential)."""
    spec = {"port": port, "paths": paths, "token": token, "rate": rate, "seconds": seconds, "warm": warm}
    argv = ["taskset", "-c", str(LOAD_CPU), sys.executable, str(Path(__file__)), "--fixed-rate-client",
            json.dumps(spec)]
    return json.loads(subprocess.run(argv, capture_output=True, text=True, check=True, cwd=REPO).stdout)


def run_fixed_rate_client(spec: dict) -> None:  # type: ignore[type-arg]
    import aiohttp

    async def main() -> dict[str, float]:
        latencies: list[float] = []
        failures = 0
        headers = {"Authorization": f"Bearer {spec['token']}"}
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{spec['port']}", connector=connector,
                                         headers=headers) as session:

            async def one(path: str, scheduled: float) -> None:
                nonlocal failures
                async with session.get(path) as response:
                    body = await response.read()
                    if response.status != 200 or b'"degraded":true' in body:
                        failures += 1
                latencies.append(time.perf_counter() - scheduled)

            # Warm the service first: every path once, one at a time (every feed in the cache).
            if spec.get("warm", True):
                for path in spec["paths"]:
                    await one(path, time.perf_counter())
            latencies.clear()
            failures = 0
            paths, rate = spec["paths"], spec["rate"]
            start = time.perf_counter()
            if rate == 0:  # sequential: one request at a time, one pass (no queueing at all)
                total = len(paths)
                for path in paths:
                    await one(path, time.perf_counter())
            else:
                total = int(rate * spec["seconds"])
                tasks = []
                for n in range(total):
                    scheduled = start + n / rate
                    delay = scheduled - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    tasks.append(asyncio.create_task(one(paths[n % len(paths)], scheduled)))
                await asyncio.gather(*tasks)
            achieved = total / (time.perf_counter() - start)
        latencies.sort()
        return {"p50_ms": round(statistics.median(latencies) * 1000, 2),
                "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
                "max_ms": round(latencies[-1] * 1000, 2), "requests": total, "errors_or_degraded": failures,
                "achieved_rps": round(achieved)}

    print(json.dumps(asyncio.run(main())))



def counters(port: int) -> dict[str, float]:
    """Feed cache lookups by result and degraded feeds, from the service's /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    values = {}
    for result in ("hit", "miss", "stale"):
        m = re.search(rf'streamrec_feed_cache_total\{{result="{result}"\}} ([\d.e+]+)', text)
        values[result] = float(m.group(1)) if m else 0.0
    for source in ("nearline", "live"):
        m = re.search(rf'streamrec_feed_top_picks_total\{{source="{source}"\}} ([\d.e+]+)', text)
        values[source] = float(m.group(1)) if m else 0.0
    values["degraded"] = sum(float(v) for v in re.findall(r"streamrec_feed_degraded_total\{[^}]*\} ([\d.e+]+)", text))
    return values


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--static-server", type=int, help="serve the static ceiling on this port")
    parser.add_argument("--fixed-rate-client", help="run the fixed-rate client on this JSON spec")
    args = parser.parse_args(argv)
    if args.static_server:
        return run_static_server(args.static_server)
    if args.fixed_rate_client:
        return run_fixed_rate_client(json.loads(args.fixed_rate_client))
    parser.error("nothing to run: --static-server PORT or --fixed-rate-client SPEC")


if __name__ == "__main__":
    main()
