#!/usr/bin/env python3
"""Streams through the fronts, side by side in one run: userkey-lb, HAProxy
and nginx (Debian's, one thread / worker each) in front of one upstream.

  bench/streams.py [--bin DIR] [--download-mib 1024] [--uploads 300]
                   [--upload-kib 1024] [--quick] [--json FILE]

Three measurements per front, each on a fresh front process:

- a download: the upstream answers GET /big with a Content-Length body of
  --download-mib; the client reads it at full speed. Recorded: the time to
  the first body byte, whether it came while the upstream was still sending,
  the whole transfer's time, and the front's peak RSS growth (sampled every
  20 ms);
- stalled uploads: --uploads clients each send the head of a POST of
  --upload-kib and all but its last byte, then stall. Recorded: the front's
  RSS growth once the upstream has received all it will get (or after 20 s),
  how many body bytes reached the upstream by then, and, after each client
  sends its last byte, how many were answered 200;
- WebSocket: --ws-conns clients each echo --ws-messages messages of
  --ws-bytes through the front to one python3-websockets echo upstream
  (rounds interleaved, the median): messages per second.

The fronts run as their operators would start them: userkey-lb with its
defaults (max_conns raised so no request queues), HAProxy with the
configuration of bench/fronts.sh, nginx with its defaults for buffering
(proxy_request_buffering and proxy_buffering on: bodies go to temporary
files). Each one's limits are raised to admit the bodies. A profile of
memory under streams, not a throughput figure. Prints a Markdown table; with
--json, the numbers for bench/report.py.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402 (beside this file)
from benchlib import free_port, rss_kib  # noqa: E402 (VmRSS of processes and their children)

BLOCK = bytes(1 << 20)


def wait_port(port, proc=None):
    """benchlib's wait, failing loudly."""
    if not benchlib.wait_port(port, timeout=10.0, proc=proc):
        raise RuntimeError(f"port {port} never opened")


class Upstream:
    """GET /big: a body of `download` bytes, sent as fast as the front takes
    it. POST: the body read and discarded, then 200 "ok"."""

    def __init__(self, download):
        self.download = download
        self.port = free_port()
        self.received = 0
        self.sending = False
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(1024)
        self.stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    got = conn.recv(65536)
                    if not got:
                        return
                    buf += got
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                if lines[0].startswith("GET /big"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.download)
                    self.sending = True
                    left = self.download
                    view = memoryview(BLOCK)
                    while left > 0:
                        n = min(left, len(BLOCK))
                        conn.sendall(view[:n])
                        left -= n
                    self.sending = False
                    continue
                length = 0
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                take = min(len(buf), length)
                buf = buf[take:]
                got_total = take
                with self.lock:
                    self.received += take
                while got_total < length:
                    got = conn.recv(min(262144, length - got_total))
                    if not got:
                        return
                    got_total += len(got)
                    with self.lock:
                        self.received += len(got)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        except OSError:
            return
        finally:
            conn.close()


def start_front(name, work, bin_dir, up_port, body_limit, ws_port=None):
    """One front before the upstream on `up_port` (with `ws_port`: before the
    WebSocket upstream instead; nginx routes /ws there itself)."""
    ws_port = ws_port or up_port
    if name != "nginx":
        up_port = ws_port
    port = free_port()
    log = open(os.path.join(work, f"{name}.log"), "w")
    if name == "userkey-lb":
        argv = [os.path.join(bin_dir, "userkey-lb"), "--listen", f"127.0.0.1:{port}", "--admin", "off",
                "--threads", "1", "--access-log", "false", "--no-active-health", "--max-connections", "4096",
                "--upstream", f"127.0.0.1:{up_port},max_conns=1000", "--max-body-bytes", str(body_limit),
                "--body-timeout", "120s", "--upstream-timeout", "120s"]
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        pids = lambda: [proc.pid]  # noqa: E731
    elif name == "haproxy":
        cfg = os.path.join(work, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write("global\n  maxconn 4096\n  nbthread 1\ndefaults\n  mode http\n  maxconn 4096\n"
                    "  timeout connect 1s\n  timeout client 120s\n  timeout server 120s\n  timeout queue 2s\n"
                    "  option http-keep-alive\nfrontend fe\n  bind 127.0.0.1:%d\n  default_backend be\n"
                    "backend be\n  http-reuse always\n  server b0 127.0.0.1:%d maxconn 1000\n" % (port, up_port))
        proc = subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=log, stderr=subprocess.STDOUT)
        pids = lambda: [proc.pid]  # noqa: E731
    else:
        tmp = os.path.join(work, "nginx")
        os.makedirs(tmp, exist_ok=True)
        # (Its workers run as an unprivileged user: they must reach the temp dir.)
        os.chmod(work, 0o755)
        os.chmod(tmp, 0o777)
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(f"worker_processes 1; pid {work}/nginx.pid; error_log {work}/nginx-error.log;\n"
                    "events { worker_connections 4096; }\n"
                    f"http {{ access_log off; client_body_temp_path {tmp}; proxy_temp_path {tmp};\n"
                    f"  fastcgi_temp_path {tmp}; uwsgi_temp_path {tmp}; scgi_temp_path {tmp};\n"
                    f"  client_max_body_size {body_limit}; client_body_timeout 120s; proxy_read_timeout 120s;\n"
                    f"  upstream be {{ server 127.0.0.1:{up_port}; keepalive 64; }}\n"
                    f"  server {{ listen 127.0.0.1:{port};\n"
                    "    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
                    f"\n    location /ws {{ proxy_pass http://127.0.0.1:{ws_port}; proxy_http_version 1.1;"
                    " proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection \"upgrade\";"
                    " proxy_read_timeout 120s; }"
                    " } }\n")
        proc = subprocess.Popen(["nginx", "-c", conf, "-g", "daemon off;"], stdout=log, stderr=subprocess.STDOUT)
        pids = lambda: [proc.pid]  # noqa: E731  (the master and, through rss_kib, its workers)
    wait_port(port)
    time.sleep(0.2)
    return proc, port, pids


def stop_front(proc):
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Sampler:
    def __init__(self, pids):
        self.pids = pids
        self.peak = rss_kib(pids)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_kib(self.pids))
            time.sleep(0.02)

    def done(self):
        self.stop = True
        self.thread.join()
        return self.peak


def download(port, pids, up, size):
    s = socket.create_connection(("127.0.0.1", port))
    base = rss_kib(pids)
    sampler = Sampler(pids)
    t0 = time.monotonic()
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = s.recv(65536)
        if not got:
            raise RuntimeError("no head")
        buf += got
    body = len(buf.split(b"\r\n\r\n", 1)[1])
    while body == 0:
        got = s.recv(1 << 20)
        if not got:
            raise RuntimeError("no body")
        body += len(got)
    ttfb = time.monotonic() - t0
    while_sending = up.sending
    view = bytearray(1 << 20)
    while body < size:
        n = s.recv_into(view)
        if n == 0:
            break
        body += n
    total = time.monotonic() - t0
    s.close()
    peak = sampler.done()
    return {"ttfb_ms": ttfb * 1000, "first_byte_while_sending": while_sending, "seconds": total,
            "complete": body == size, "rss_growth_kib": peak - base}


def stalled_uploads(port, pids, up, count, size):
    base = rss_kib(pids)
    up.received = 0
    socks = []
    head = b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size
    body = bytes(size - 1)
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(head)
        socks.append(s)
    senders = []
    for s in socks:  # (sent in threads: a front that does not read would block a plain loop)
        t = threading.Thread(target=lambda s=s: s.sendall(body), daemon=True)
        t.start()
        senders.append(t)
    end = time.monotonic() + 20
    want = count * (size - 1)
    while time.monotonic() < end and (up.received < want or any(t.is_alive() for t in senders)):
        time.sleep(0.05)
    time.sleep(0.3)
    grown = rss_kib(pids) - base
    reached = up.received
    for s in socks:
        s.sendall(b"\0")
    ok = 0
    for s in socks:
        s.settimeout(30)
        buf = b""
        try:
            while b"\r\n\r\n" not in buf or not buf.endswith(b"ok"):
                got = s.recv(4096)
                if not got:
                    break
                buf += got
        except OSError:
            pass
        ok += buf.startswith(b"HTTP/1.1 200")
        s.close()
    return {"rss_growth_kib": grown, "upstream_bytes_when_stalled": reached, "sent_bytes": want, "answered_200": ok}


WS_UPSTREAM = """
import asyncio, sys, websockets
async def echo(ws, *_):
    async for m in ws:
        await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1]), max_size=None, compression=None):
        await asyncio.Future()
asyncio.run(main())
"""

WS_CLIENT = """
import asyncio, sys, time, websockets
port, conns, messages, size = (int(a) for a in sys.argv[1:5])
async def one(payload):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None, compression=None) as ws:
        for _ in range(messages):
            await ws.send(payload)
            assert await ws.recv() == payload
async def main():
    payload = bytes(size)
    t0 = time.monotonic()
    await asyncio.gather(*(one(payload) for _ in range(conns)))
    print(conns * messages / (time.monotonic() - t0))
asyncio.run(main())
"""


# Debian's python3-websockets is on the system Python, which may not be the
# one running this script.
WS_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def websocket_rate(port, conns, messages, size):
    """Echoed messages per second through the front on `port` (a python3-websockets client)."""
    out = subprocess.run([WS_PYTHON, "-c", WS_CLIENT, str(port), str(conns), str(messages), str(size)],
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"websocket client failed: {out.stderr.strip()[-300:]}")
    return float(out.stdout.strip())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.environ.get("USERKEY_BIN", "build-release/apps"))
    ap.add_argument("--download-mib", type=int, default=1024)
    ap.add_argument("--uploads", type=int, default=300)
    ap.add_argument("--upload-kib", type=int, default=1024)
    ap.add_argument("--quick", action="store_true", help="256 MiB download, 100 uploads")
    ap.add_argument("--ws-conns", type=int, default=16)
    ap.add_argument("--ws-messages", type=int, default=2000, help="round trips per WebSocket connection")
    ap.add_argument("--ws-bytes", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3, help="WebSocket rounds, fronts interleaved; the median")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.quick:
        args.download_mib, args.uploads, args.ws_messages, args.rounds = 256, 100, 500, 1
    for tool in ("haproxy", "nginx"):
        if not shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin"):
            sys.exit(f"{sys.argv[0]}: needs {tool}")
    os.environ["PATH"] += ":/usr/sbin"
    size = args.download_mib << 20
    upload = args.upload_kib << 10
    up = Upstream(size)
    work = tempfile.mkdtemp()
    results = {}
    try:
        for name in ("userkey-lb", "haproxy", "nginx"):
            r = {}
            proc, port, pids = start_front(name, work, args.bin, up.port, 2 * upload)
            try:
                r["download"] = download(port, pids(), up, size)
            finally:
                stop_front(proc)
            proc, port, pids = start_front(name, work, args.bin, up.port, 2 * upload)
            try:
                r["uploads"] = stalled_uploads(port, pids(), up, args.uploads, upload)
            finally:
                stop_front(proc)
            results[name] = r
            print(f"streams: {name}: {json.dumps(r)}", file=sys.stderr)
        # WebSocket: the same echo upstream behind each front, rounds
        # interleaved (the fronts tunnel bytes; the Python ends bound the
        # rate, so the ratios say whether a front costs anything).
        ws_port = free_port()
        ws_up = subprocess.Popen([WS_PYTHON, "-c", WS_UPSTREAM, str(ws_port)])
        try:
            wait_port(ws_port)
            rates = {name: [] for name in results}
            fronts = {name: start_front(name, work, args.bin, up.port, 2 * upload, ws_port) for name in results}
            try:
                for _ in range(args.rounds):
                    for name, (proc, port, pids) in fronts.items():
                        rates[name].append(websocket_rate(port, args.ws_conns, args.ws_messages, args.ws_bytes))
            finally:
                for proc, _, _ in fronts.values():
                    stop_front(proc)
            for name, rs in rates.items():
                results[name]["websocket_msgs_per_s"] = sorted(rs)[len(rs) // 2]
        finally:
            ws_up.terminate()
            ws_up.wait()
    finally:
        up.stop = True
        shutil.rmtree(work, ignore_errors=True)
    print(f"# Streams: a {args.download_mib} MiB download and {args.uploads} stalled {args.upload_kib} KiB uploads, "
          f"one thread / worker per front\n")
    print("| front | download: first byte | while the upstream still sent | transfer | RSS growth, peak | "
          "uploads: RSS growth | body bytes through to the upstream | answered 200 | WebSocket msgs/s | "
          "vs HAProxy |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    ha_ws = results.get("haproxy", {}).get("websocket_msgs_per_s")
    for name, r in results.items():
        d, u = r["download"], r["uploads"]
        ws = r.get("websocket_msgs_per_s")
        print(f"| {name} | {d['ttfb_ms']:.1f} ms | {'yes' if d['first_byte_while_sending'] else 'no'} | "
              f"{d['seconds']:.2f} s{'' if d['complete'] else ' (incomplete)'} | {d['rss_growth_kib'] / 1024:.1f} MiB | "
              f"{u['rss_growth_kib'] / 1024:.1f} MiB | {u['upstream_bytes_when_stalled'] / u['sent_bytes'] * 100:.0f}% | "
              f"{u['answered_200']} / {args.uploads} | {ws:,.0f} | {ws / ha_ws:.2f}x |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"download_mib": args.download_mib, "uploads": args.uploads, "upload_kib": args.upload_kib,
                       "fronts": results}, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
