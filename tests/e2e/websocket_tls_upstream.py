#!/usr/bin/env python3
"""A WebSocket echo server over TLS (Debian's python3-websockets, run with
/usr/bin/python3): the upstream with tls=on in test_lb_websocket.cpp, as
tests/support/websocket_upstream.hpp is the plain one. Messages are echoed;
"whoami" is answered "tls"; "close-please" makes the server close (1000,
"bye"). It listens on a free 127.0.0.1 port, writes the port into PORT_FILE
once it listens, and serves until it is stopped (SIGTERM).

usage: websocket_tls_upstream.py PORT_FILE CERT KEY
"""
import asyncio
import os
import ssl
import sys

import websockets


async def echo(ws, _path=None):
    try:
        async for message in ws:
            if message == "whoami":
                await ws.send("tls")
            elif message == "close-please":
                await ws.close(1000, "bye")
            else:
                await ws.send(message)
    except websockets.ConnectionClosed:
        pass


async def main(port_file, cert, key):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    async with websockets.serve(echo, "127.0.0.1", 0, ssl=context, max_size=None, compression=None,
                                ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        with open(port_file + ".tmp", "w") as f:
            f.write(str(port))
        os.rename(port_file + ".tmp", port_file)
        await asyncio.Future()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(*sys.argv[1:]))
