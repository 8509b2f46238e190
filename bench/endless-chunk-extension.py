#!/usr/bin/env python3
"""One connection sends a chunked body whose chunk extension never ends, paced
at 200 MiB over 4 s (the hardening issue's row); reports what the lb took, its
answer, whether it closed the connection, and its VmRSS before -> peak.

  bench/endless-chunk-extension.py PATH/TO/userkey-lb [PORT]

It starts the lb itself (upstream 127.0.0.1:1, never reached)."""
import os, select, socket, subprocess, sys, time

lb_bin = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 else 18931

def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return -1

p = subprocess.Popen([lb_bin, "--listen", f"127.0.0.1:{port}", "--admin", "off", "--upstream", "127.0.0.1:1",
                      "--no-active-health", "--access-log", "false"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
        except OSError:
            time.sleep(0.05)
    time.sleep(0.3)
    before = rss(p.pid); peak = before
    s = socket.create_connection(("127.0.0.1", port)); s.setblocking(False)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;ext="
    block = b"e" * 65536
    pending = head; sent = 0; answer = b""; closed = False
    t0 = time.monotonic(); last = t0
    while time.monotonic() - t0 < 4.5 and sent < 200 * 2**20 and not closed:
        if sent > (time.monotonic() - t0) / 4.0 * 200 * 2**20:  # pace: 50 MiB/s
            time.sleep(0.001)
            continue
        r, w, _ = select.select([s], [s], [], 0.02)
        if r:
            try:
                d = s.recv(65536)
                if not d: closed = True
                answer += d
            except BlockingIOError: pass
            except OSError: closed = True
        if w and not closed:
            try:
                n = s.send(pending or block); sent += n
                pending = pending[n:] if pending else b""
            except BlockingIOError: pass
            except OSError: closed = True
        if time.monotonic() - last > 0.05:
            peak = max(peak, rss(p.pid)); last = time.monotonic()
    elapsed = time.monotonic() - t0
    peak = max(peak, rss(p.pid))
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace") if answer else "(no answer)"
    print(f"sent {sent/2**20:.1f} MiB in {elapsed:.2f} s; answer: {status}; lb closed: {closed}; "
          f"lb VmRSS {before} KiB -> peak {peak} KiB (+{(peak-before)/1024:.1f} MiB)")
    s.close()
finally:
    p.terminate(); p.wait()
