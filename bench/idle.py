#!/usr/bin/env python3
"""Memory per idle keep-alive client connection of a running front.

Opens --conns connections to 127.0.0.1:PORT, sends one request on each and
reads its answer, then leaves them all open and idle; the front's RSS (the
given pids and their descendants, e.g. nginx's workers) is read before and
after, and (after - before) / conns is the cost of one idle connection.
With --load SECONDS it then runs wrk (--load-conns connections) against the
front for that long while the idle connections stay open, and reports the
front's peak RSS during the load and wrk's figures.

    bench/idle.py --port 8080 --pid 1234 --conns 10000 [--load 5] [--json out.json]

The front must admit --conns + --load-conns connections, and this process
needs as many file descriptors (run.sh raises `ulimit -n`).
"""
import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402


async def read_answer(reader):
    """One HTTP/1.1 response (Content-Length or chunked); returns the status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length, chunked = 0, False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value.strip())
        elif name == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(length)
    return status


async def open_idle(port, n, path, parallel):
    """n connections, one request each; returns (open writers, statuses)."""
    gate = asyncio.Semaphore(parallel)
    held, statuses = [], {}

    async def one(i):
        async with gate:
            try:
                reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
                writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
                status = await asyncio.wait_for(read_answer(reader), 10)
                held.append((reader, writer))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError) as e:
                status = type(e).__name__
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(one(i) for i in range(n)))
    return held, statuses


def still_open(held):
    """How many of the idle connections the front has not closed (no EOF yet)."""
    return sum(1 for reader, _ in held if not reader.at_eof() and not reader._transport.is_closing())


async def measure(args):
    pids = args.pid
    before = benchlib.rss_kib(pids)
    t0 = time.monotonic()
    held, statuses = await open_idle(args.port, args.conns, args.path, args.parallel)
    opened_s = time.monotonic() - t0
    await asyncio.sleep(args.settle)
    after = benchlib.rss_kib(pids)
    ok = statuses.get(200, 0)
    # Every connection that got an answer (a 502 too) is held open and idle.
    result = {"connections": args.conns, "answered_200": ok, "held_open": len(held),
              "statuses": {str(k): v for k, v in statuses.items()},
              "open_seconds": round(opened_s, 2), "rss_before_kib": before, "rss_idle_kib": after,
              "per_connection_kib": (after - before) / len(held) if held else None}
    if args.load:
        peak = [after]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], benchlib.rss_kib(pids))
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        loop = asyncio.get_running_loop()
        url = f"http://127.0.0.1:{args.port}{args.path}"
        try:
            wrk = await loop.run_in_executor(
                None, lambda: benchlib.run_wrk(url, args.load_conns, f"{args.load:g}s", pids))
        finally:
            done.set()
            sampler.join()
        await asyncio.sleep(0.2)
        result["load"] = {"conns": args.load_conns, "seconds": args.load, "rss_peak_kib": peak[0],
                          "rss_after_kib": benchlib.rss_kib(pids), "idle_still_open": still_open(held), **wrk}
    result["idle_still_open"] = still_open(held)
    for _, writer in held:
        writer.close()
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, action="append", required=True, help="the front's process (repeatable)")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--path", default="/?user_id=1")
    ap.add_argument("--parallel", type=int, default=64,
                    help="connections being opened at once (nginx's max_conns has no queue: more would see 502s)")
    ap.add_argument("--settle", type=float, default=1.5, help="seconds idle before reading the RSS")
    ap.add_argument("--load", type=float, default=0, help="then this many seconds of wrk load")
    ap.add_argument("--load-conns", type=int, default=64)
    ap.add_argument("--json", help="write the result here (else stdout)")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.conns + 100 > hard:
        sys.exit(f"idle.py: {args.conns} connections need more than the {hard} file descriptors allowed")
    result = asyncio.run(measure(args))
    text = json.dumps(benchlib.clean(result), indent=1)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
