#!/usr/bin/env python3
"""Shared pieces of the benchmark scripts: ports, /proc readings, wrk.

Used as a module by bench/stack.py, bench/idle.py and bench/all.sh's helpers,
and from bench/run.sh through its command line:

    benchlib.py wrk URL CONNS DURATION [PID...]   one wrk run -> "rps p50 p99 errors cpu_us" (run.sh's format)
    benchlib.py fronts-json ROUNDS_FILE OUT.json KEY=VALUE...   run.sh's rounds -> JSON
    benchlib.py wrk-tls [--header H] URL CONNS DURATION [PID...]
        one wrk run -> "rps p50 p99 errors cpu_us timeouts client_cpu_us"
        (bench/tls.sh; client_cpu_us: wrk's own CPU time per request)
    benchlib.py tls-json ROUNDS_FILE NEGOTIATED_FILE OUT.json KEY=VALUE...   tls.sh's rounds -> JSON

Standard library only (the system's python3 is enough).
"""
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time

FIELDS = ("rps", "p50_ms", "p99_ms", "errors", "cpu_us")


def free_port():
    """A port the kernel just handed out on 127.0.0.1 (never a fixed one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if proc is not None and proc.poll() is not None:
                return False
            time.sleep(0.05)
    return False


def _children():
    """pid -> list of child pids, from /proc."""
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(pids):
    """The given pids and all their descendants (nginx and uWSGI masters fork workers)."""
    kids = _children()
    out, todo = [], [int(p) for p in pids]
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pids):
    """user+system clock ticks of the processes and their descendants (alive ones)."""
    total = 0
    for p in process_tree(pids):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total


def rss_kib(pids):
    """Sum of VmRSS (KiB) of the processes and their descendants."""
    total = 0
    for p in process_tree(pids):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def _ms(text, label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)\s*$" % re.escape(label), text, re.M)
    if not m:
        return float("nan")
    v, unit = float(m.group(1)), m.group(2)
    return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v


def parse_wrk(text):
    """wrk --latency output -> rps, p50/p99 (ms), errors (socket errors + non-2xx/3xx), requests."""
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        raise ValueError("no Requests/sec in wrk output:\n" + text)
    errors = 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    timeouts = 0
    if sock:
        errors += sum(int(x) for x in sock.groups())
        timeouts = int(sock.group(4))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    total = re.search(r"(\d+) requests in", text)
    return {"rps": float(m.group(1)), "p50_ms": _ms(text, "50%"), "p99_ms": _ms(text, "99%"),
            "errors": errors, "timeouts": timeouts, "requests": int(total.group(1)) if total else 0}


def wrk_command(url, conns, duration, script=None, threads=2, timeout="5s", headers=()):
    cmd = ["wrk", f"-t{min(threads, conns)}", f"-c{conns}", f"-d{duration}", f"--timeout", timeout, "--latency"]
    for h in headers:
        cmd += ["-H", h]
    if script:
        cmd += ["-s", script]
    return cmd + [url]


def run_wrk(url, conns, duration, pids=(), script=None, threads=2, headers=()):
    """One wrk run; cpu_us is the CPU time (user+system) of `pids` and their
    descendants per request answered (nan without pids); client_cpu_us is
    wrk's own per request."""
    before = cpu_ticks(pids) if pids else 0
    kids = os.times()
    out = subprocess.run(wrk_command(url, conns, duration, script, threads, headers=headers),
                         capture_output=True, text=True)
    kids_after = os.times()
    after = cpu_ticks(pids) if pids else 0
    r = parse_wrk(out.stdout + out.stderr)
    hz = os.sysconf("SC_CLK_TCK")
    r["cpu_us"] = ((after - before) / hz * 1e6 / r["requests"]) if pids and r["requests"] else float("nan")
    client_s = (kids_after.children_user + kids_after.children_system) - (kids.children_user + kids.children_system)
    r["client_cpu_us"] = client_s * 1e6 / r["requests"] if r["requests"] else float("nan")
    return r


def warm(url, conns, script=None):
    """A 1 s wrk run whose result is thrown away (connections and pools warmed)."""
    subprocess.run(wrk_command(url, conns, "1s", script), capture_output=True)


def median_of(rounds):
    """Median round per field; errors and timeouts summed over the rounds
    (a median round's count would hide errors in the others)."""
    out = {}
    for k in ("rps", "p50_ms", "p99_ms", "cpu_us", "client_cpu_us"):
        vals = [r[k] for r in rounds if k in r and r[k] == r[k] and r[k] is not None]
        if vals or k != "client_cpu_us":
            out[k] = statistics.median(vals) if vals else None
    out["errors"] = int(sum(r.get("errors", 0) for r in rounds))
    out["timeouts"] = int(sum(r.get("timeouts", 0) for r in rounds))
    return out


def clean(obj):
    """NaN -> None, so the JSON is standard."""
    if isinstance(obj, float) and obj != obj:
        return None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    return obj


def write_json(path, data):
    with open(path, "w") as f:
        json.dump(clean(data), f, indent=1, sort_keys=False)
        f.write("\n")


def _meta(pairs):
    """KEY=VALUE arguments -> dict; KEY_file=PATH reads the file (JSON if
    .json) into KEY; integers become ints."""
    meta = {}
    for kv in pairs:
        k, _, v = kv.partition("=")
        if k.endswith("_file"):
            k = k[:-5]
            try:
                with open(v) as f:
                    v = json.load(f) if v.endswith(".json") else f.read()
            except OSError:
                continue
        elif re.fullmatch(r"-?\d+", v):
            v = int(v)
        meta[k] = v
    return meta


def _fronts_json(rounds_file, out, pairs):
    """run.sh's per-round lines "conns round front rps p50 p99 errors cpu_us
    timeouts" -> {"points": [{conns, front, rounds, median}], ...meta}."""
    meta = _meta(pairs)
    points = {}
    with open(rounds_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 8:
                continue
            conns, rnd, front = int(parts[0]), int(parts[1]), parts[2]
            vals = [float(x) for x in parts[3:]]
            r = dict(zip(FIELDS, vals))
            r["timeouts"] = vals[5] if len(vals) > 5 else 0
            r["round"] = rnd
            points.setdefault((conns, front), []).append(r)
    meta["points"] = [{"conns": c, "front": fr, "rounds": rs, "median": median_of(rs)}
                      for (c, fr), rs in sorted(points.items())]
    write_json(out, meta)


TLS_FIELDS = ("rps", "p50_ms", "p99_ms", "errors", "cpu_us", "timeouts", "client_cpu_us")


def _tls_json(rounds_file, negotiated_file, out, pairs):
    """tls.sh's per-round lines "mode conns round front rps p50 p99 errors
    cpu_us timeouts client_cpu_us" and its negotiated-parameters lines
    "front key=value..." -> {"points": [{mode, conns, front, rounds, median}],
    "negotiated": {front: {...}}, ...meta}."""
    meta = _meta(pairs)
    points = {}
    with open(rounds_file) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 4 + len(TLS_FIELDS):
                continue
            mode, conns, rnd, front = parts[0], int(parts[1]), int(parts[2]), parts[3]
            r = dict(zip(TLS_FIELDS, (float(x) for x in parts[4:])))
            r["round"] = rnd
            points.setdefault((mode, conns, front), []).append(r)
    meta["points"] = [{"mode": m, "conns": c, "front": fr, "rounds": rs, "median": median_of(rs)}
                      for (m, c, fr), rs in sorted(points.items())]
    negotiated = {}
    try:
        with open(negotiated_file) as f:
            for line in f:
                front, *kvs = line.split()
                negotiated.setdefault(front, {}).update(kv.split("=", 1) for kv in kvs if "=" in kv)
    except OSError:
        pass
    meta["negotiated"] = negotiated
    write_json(out, meta)


def main(argv):
    if len(argv) >= 4 and argv[0] == "wrk":
        url, conns, duration, pids = argv[1], int(argv[2]), argv[3], argv[4:]
        r = run_wrk(url, conns, duration, pids)
        print(f"{r['rps']:.0f} {r['p50_ms']:.2f} {r['p99_ms']:.2f} {r['errors']} {r['cpu_us']:.1f} {r['timeouts']}")
        return 0
    if argv and argv[0] == "wrk-tls":
        rest, headers = argv[1:], []
        while len(rest) >= 2 and rest[0] == "--header":
            headers.append(rest[1])
            rest = rest[2:]
        if len(rest) >= 3:
            url, conns, duration, pids = rest[0], int(rest[1]), rest[2], rest[3:]
            r = run_wrk(url, conns, duration, pids, headers=headers)
            print(f"{r['rps']:.0f} {r['p50_ms']:.2f} {r['p99_ms']:.2f} {r['errors']} {r['cpu_us']:.1f} "
                  f"{r['timeouts']} {r['client_cpu_us']:.1f}")
            return 0
    if len(argv) >= 4 and argv[0] == "tls-json":
        _tls_json(argv[1], argv[2], argv[3], argv[4:])
        return 0
    if len(argv) >= 3 and argv[0] == "fronts-json":
        _fronts_json(argv[1], argv[2], argv[3:])
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
