#!/usr/bin/env python3
"""How long a new /healthz probe waits while a backend holds N keep-alive clients.

Starts BACKEND (a userkey-backend binary) on a free 127.0.0.1 port with the
embedded dump and opens --clients keep-alive connections to it, each sending
one lookup (then staying open: idle, or with --busy asking again a second
after each answer). Half a second later it starts --probes new connections,
one every 0.5 s, that each ask GET /healthz once, and times each from connect
to the full answer, while the clients stay connected. Prints each probe, the
median, and the slowest answer any client had.

    bench/probe-under-connections.py build/apps/userkey-backend
    bench/probe-under-connections.py /tmp/main-backend --clients 1024 --probes 7 --busy

Wall-clock figures on a shared machine: compare binaries within one run.
"""
import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def read_response(reader):
    """One HTTP/1.1 response with a Content-Length; returns the status."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    return status


async def client(port, i, args, stop, waits):
    """A keep-alive client: connects, asks; in --busy mode asks again a second
    after each answer until `stop`. Records how long each answer took (None:
    none within --client-limit)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            start = time.monotonic()
            writer.write(f"GET /?user_id={1 + i % 7} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            await asyncio.wait_for(read_response(reader), args.client_limit)
            waits.append(time.monotonic() - start)
            if not args.busy:
                await stop.wait()
                break
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
                break
            except asyncio.TimeoutError:
                pass
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        waits.append(None)
    writer.close()


async def probe(port, delay, limit):
    """A new connection asking GET /healthz once, `delay` seconds from now."""
    await asyncio.sleep(delay)
    start = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        status = await asyncio.wait_for(read_response(reader), limit)
    except asyncio.TimeoutError:
        status = None
    writer.close()
    return status, time.monotonic() - start


async def measure(port, args):
    stop = asyncio.Event()
    waits = []
    clients = [asyncio.create_task(client(port, i, args, stop, waits)) for i in range(args.clients)]
    # The probes start once the clients have sent their first requests, one
    # every 0.5 s, each on its own (a slow one does not delay the next).
    await asyncio.sleep(0.5)
    took = await asyncio.gather(*(probe(port, 0.5 * n, args.probe_limit) for n in range(args.probes)))
    for n, (status, t) in enumerate(took):
        print(f"probe {n + 1}: /healthz {status if status else 'no answer'} in {t * 1000:.1f} ms")
    stop.set()
    await asyncio.gather(*clients)
    served = sorted(t for t in waits if t is not None)
    mode = "busy (one request a second each)" if args.busy else "idle after one request"
    print(f"{args.clients} keep-alive clients, {mode}: {len(served)} requests answered, {len(waits) - len(served)} not "
          f"within {args.client_limit:.0f} s" + (f"; slowest answer {served[-1] * 1000:.0f} ms" if served else ""))
    print(f"median /healthz probe with {args.clients} keep-alive clients open: "
          f"{statistics.median(t for _, t in took) * 1000:.1f} ms (of {len(took)}; an unanswered probe counts as its "
          f"{args.probe_limit:.0f} s limit)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("backend", help="userkey-backend binary")
    ap.add_argument("--clients", type=int, default=1024)
    ap.add_argument("--probes", type=int, default=7)
    ap.add_argument("--busy", action="store_true", help="clients ask once a second instead of once")
    ap.add_argument("--client-limit", type=float, default=30.0, help="seconds a client waits for an answer")
    ap.add_argument("--probe-limit", type=float, default=30.0, help="seconds a probe waits for its answer")
    args = ap.parse_args()

    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="probe-bench-", suffix=".log", delete=False)
    backend = subprocess.Popen([args.backend, "--listen", f"127.0.0.1:{port}", "--dump", os.path.join(REPO, "dump"),
                                "--access-log", "false"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or backend.poll() is not None:
                    sys.exit(f"backend did not start; log: {log.name}")
                time.sleep(0.05)
        asyncio.run(measure(port, args))
    finally:
        backend.send_signal(signal.SIGTERM)
        try:
            backend.wait(15)
        except subprocess.TimeoutExpired:
            backend.kill()


if __name__ == "__main__":
    main()
