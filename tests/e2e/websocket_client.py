#!/usr/bin/env python3
"""A real WebSocket client (Debian's python3-websockets, run with
/usr/bin/python3) for the lb's end-to-end tests (test_lb_websocket.cpp):
one scenario per run against URL, a line per finding on standard output,
exit 0 when the scenario held, 1 (with a line starting FAIL) when not.

usage: websocket_client.py [--cafile PEM] URL SCENARIO [ARG...]
  echo               text and binary messages of 0 B to 1 MiB come back intact
  ping               a ping is answered by its pong
  client-close       the client closes (1000): a clean close both ways
  server-close       the server is asked to close: the client gets 1000 "bye"
  many N FILE        N connections open at once, each echoing a message of its
                     own; held open until FILE exists, then closed
  hold N SECONDS     N connections opened, then quiet until the other side
                     closes every one (exit 0) or SECONDS pass (exit 1)
  split N FILE       N connections opened one after another, each asking
                     "whoami"; those answered "b" are closed at once, the
                     rest held until FILE exists
Every wait is bounded; the echo server is tests/support/websocket_upstream.hpp.
"""
import asyncio
import os
import random
import ssl
import sys
import time

import websockets


def say(*words):
    print(*words, flush=True)


def fail(*words):
    say("FAIL", *words)
    sys.exit(1)


class Client:
    def __init__(self, url, cafile):
        self.url = url
        # (only a wss:// URL may be given a TLS context)
        self.ssl = ssl.create_default_context(cafile=cafile) if cafile and url.startswith("wss://") else None

    def connect(self):
        # No keep-alive pings (a quiet tunnel must stay quiet), no size limit
        # on messages, no compression (the bytes on the wire are the message).
        return websockets.connect(self.url, ssl=self.ssl, ping_interval=None, max_size=None, compression=None,
                                  open_timeout=10, close_timeout=5)


async def wait_for_file(path, seconds=30):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            fail("timed out waiting for", path)
        await asyncio.sleep(0.02)


async def echo(client):
    rng = random.Random(21)
    sizes = [0, 1, 125, 126, 127, 65535, 65536, 65537, 300_000, 1 << 20]
    async with client.connect() as ws:
        for size in sizes:
            binary = rng.randbytes(size)
            await ws.send(binary)
            back = await asyncio.wait_for(ws.recv(), 20)
            if back != binary:
                fail("binary", size, "came back as", type(back).__name__, len(back))
            # Text: multi-byte characters too; `size` bytes of UTF-8 or one less.
            text = ("aé€𝄞" * (size // 10 + 1)).encode()[:size].decode("utf-8", "ignore")
            await ws.send(text)
            back = await asyncio.wait_for(ws.recv(), 20)
            if back != text:
                fail("text", len(text), "came back as", type(back).__name__, len(back))
        say("echo ok", len(sizes), "sizes up to", max(sizes))


async def ping(client):
    async with client.connect() as ws:
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
        say("pong ok")


async def client_close(client):
    async with client.connect() as ws:
        await ws.send("before close")
        if await asyncio.wait_for(ws.recv(), 5) != "before close":
            fail("no echo before the close")
        await ws.close(code=1000, reason="done")
        if ws.close_code != 1000:
            fail("close code", ws.close_code)
        say("client close ok", ws.close_code)


async def server_close(client):
    async with client.connect() as ws:
        await ws.send("close-please")
        try:
            message = await asyncio.wait_for(ws.recv(), 5)
            fail("got a message instead of a close:", message)
        except websockets.ConnectionClosedOK as closed:
            if closed.rcvd is None or closed.rcvd.code != 1000 or closed.rcvd.reason != "bye":
                fail("closed with", closed.rcvd)
        await asyncio.wait_for(ws.wait_closed(), 5)
        say("server close ok", ws.close_code, ws.close_reason)


async def many(client, n, path):
    connections = await asyncio.gather(*(client.connect() for _ in range(n)))

    async def one(i, ws):
        message = f"tunnel {i} " + "x" * i
        await ws.send(message)
        if await asyncio.wait_for(ws.recv(), 10) != message:
            fail("tunnel", i, "echoed something else")

    await asyncio.gather(*(one(i, ws) for i, ws in enumerate(connections)))
    say("open", n)
    await wait_for_file(path)
    await asyncio.gather(*(ws.close() for ws in connections))
    say("closed", n, "codes", sorted({ws.close_code for ws in connections}))


async def hold(client, n, seconds):
    connections = [await client.connect() for _ in range(n)]
    opened = time.monotonic()
    say("open", n)
    try:
        await asyncio.wait_for(asyncio.gather(*(ws.wait_closed() for ws in connections)), seconds)
    except asyncio.TimeoutError:
        fail("still open after", seconds, "s")
    say("closed", n, "after %.2f s" % (time.monotonic() - opened), "codes",
        sorted({ws.close_code for ws in connections}))


async def split(client, n, path):
    kept = []
    for _ in range(n):
        ws = await client.connect()
        await ws.send("whoami")
        name = await asyncio.wait_for(ws.recv(), 5)
        say("on", name)
        if name == "b":
            await ws.close()
        else:
            kept.append(ws)
    say("holding", len(kept))
    await wait_for_file(path)
    await asyncio.gather(*(ws.close() for ws in kept))
    say("done")


def main(argv):
    cafile = None
    if len(argv) > 1 and argv[1] == "--cafile":
        cafile = argv[2]
        argv = argv[:1] + argv[3:]
    if len(argv) < 3:
        fail(__doc__)
    client = Client(argv[1], cafile)
    scenario, args = argv[2], argv[3:]
    run = {
        "echo": lambda: echo(client),
        "ping": lambda: ping(client),
        "client-close": lambda: client_close(client),
        "server-close": lambda: server_close(client),
        "many": lambda: many(client, int(args[0]), args[1]),
        "hold": lambda: hold(client, int(args[0]), float(args[1])),
        "split": lambda: split(client, int(args[0]), args[1]),
    }.get(scenario)
    if run is None:
        fail("unknown scenario", scenario)
    try:
        asyncio.run(asyncio.wait_for(run(), 120))
    except SystemExit:
        raise
    except BaseException as e:  # noqa: BLE001 - any failure is the scenario's
        fail(type(e).__name__, e)


if __name__ == "__main__":
    main(sys.argv)
