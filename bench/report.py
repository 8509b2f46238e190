#!/usr/bin/env python3
"""Benchmark results -> docs/benchmarks.md, SVG plots and the README headline.

    report.py collect --out RESULTS.json --fronts F1.json F2.json [--tls T.json...] --stack S.json [--bin DIR]
                      [--elapsed S] [--quick 0|1] [--command CMD]...
        joins the parts that bench/run.sh, bench/tls.sh and bench/stack.py wrote, with the
        machine, the versions of every program measured and the commands run
    report.py render RESULTS.json --md docs/benchmarks.md --svg-dir docs/benchmarks [--readme README.md]
        writes the report (tables, the targets of issue 9 and whether each
        holds, the machine, versions and exact commands) and its plots; with
        --readme, replaces the text between <!-- bench:headline --> and
        <!-- /bench:headline --> with the headline

Standard library only: the plots are SVG written here, no plotting package.
"""
import argparse
import datetime
import html
import json
import math
import os
import platform
import re
import subprocess
import sys

FRONT_ORDER = ["userkey-lb", "haproxy", "nginx", "lb-baseline"]
FRONT_NAMES = {"userkey-lb": "userkey-lb", "haproxy": "HAProxy", "nginx": "nginx", "lb-baseline": "lb-baseline"}
COLORS = {"userkey-lb": "#2b6cb0", "haproxy": "#c53030", "nginx": "#2f855a", "lb-baseline": "#6b46c1",
          "userkey": "#2b6cb0", "seed": "#d69e2e", "yardstick": "#718096"}
HEADLINE_START, HEADLINE_END = "<!-- bench:headline -->", "<!-- /bench:headline -->"


# ---------------------------------------------------------------------------
# collect

def _first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout + out.stderr).strip()
        return text.splitlines()[0] if text else "unknown"
    except (OSError, subprocess.TimeoutExpired):
        return "not installed"


def _dpkg_version(package):
    out = _first_line(["dpkg-query", "-W", "-f=${Version}", package])
    return out if out and "no packages" not in out.lower() else "not installed"


def machine():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo") as f:
            mem = int(f.readline().split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "memory_mib": mem,
            "os": _first_line(["sh", "-c", ". /etc/os-release && echo \"$PRETTY_NAME\""])}


def versions(bin_dir):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    rev = _first_line(["git", "-C", repo, "describe", "--always", "--dirty"])
    return {
        "userkey": rev,
        "userkey binaries": bin_dir or "?",
        "haproxy": _first_line(["haproxy", "-v"]),
        "nginx": _first_line(["nginx", "-v"]),
        "wrk": _first_line(["wrk", "-v"]).split(" Copyright")[0],
        "openssl": _first_line(["openssl", "version"]),
        "uwsgi": _first_line(["uwsgi", "--version"]),
        "ferretdb": _first_line(["ferretdb", "--version"]),
        "python3-flask": _dpkg_version("python3-flask"),
        "python3-pymongo": _dpkg_version("python3-pymongo"),
        "libcpp-httplib-dev": _dpkg_version("libcpp-httplib-dev"),
        "g++": _first_line(["g++", "--version"]),
    }


def collect(args):
    fronts = []
    idle = None
    for path in args.fronts:
        with open(path) as f:
            part = json.load(f)
        found = {k[len("idle_"):]: v for k, v in part.items() if k.startswith("idle_") and isinstance(v, dict)}
        for k in list(part):
            if k.startswith("idle_") and isinstance(part[k], dict):
                del part[k]
        if found:
            idle = {"connections": part.get("idle_connections"), "load_seconds": part.get("idle_load_seconds"),
                    "threads": part.get("threads"), "fronts": found}
        fronts.append(part)
    tls = []
    for path in args.tls or []:
        with open(path) as f:
            tls.append(json.load(f))
    stack = {}
    if args.stack:
        with open(args.stack) as f:
            stack = json.load(f)
    result = {
        "schema": 1,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "quick": bool(int(args.quick)),
        "elapsed_s": args.elapsed,
        "machine": machine(),
        "versions": versions(args.bin),
        "commands": ["make bench" + (" BENCH_QUICK=1" if int(args.quick) else "")] + (args.command or []),
        "notes": args.note or [],
        "fronts": fronts,
        "tls": tls,
        "idle": idle,
        "stack": stack.get("stack"),
        "backend": stack.get("backend"),
        "ferretdb": stack.get("ferretdb"),
        "stack_settings": stack.get("settings"),
        "streams": None,
    }
    if args.streams:
        with open(args.streams) as f:
            result["streams"] = json.load(f)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"report: results in {args.out}", file=sys.stderr)


# ---------------------------------------------------------------------------
# SVG

def _esc(s):
    return html.escape(str(s), quote=True)


def _nice_max(v):
    if v <= 0:
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * exp >= v:
            return m * exp
    return 10 * exp


def _fmt_num(v):
    if v is None:
        return "-"
    if v == int(v):
        return f"{int(v):,}"
    if v >= 100:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _svg(width, height, body, title):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">\n'
            f'<title>{_esc(title)}</title>\n<rect width="{width}" height="{height}" fill="#ffffff"/>\n'
            f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{_esc(title)}</text>\n'
            + "\n".join(body) + "\n</svg>\n")


def line_chart(title, series, xlabel, ylabel, log_y=False, width=680, height=380):
    """series: [{"label", "color", "dash", "points": [(x, y)], "marks": {x: text}}]; x on a log2 axis.
    A point with a mark (errors, say) gets a red ring and the text beside it."""
    left, right, top, bottom = 70, 190, 35, 50
    pw, ph = width - left - right, height - top - bottom
    xs = sorted({x for s in series for x, y in s["points"] if y is not None})
    ys = [y for s in series for _, y in s["points"] if y is not None and (y > 0 or not log_y)]
    body = []
    if not xs or not ys:
        body.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text>')
        return _svg(width, height, body, title)
    lx0, lx1 = math.log2(xs[0]), math.log2(xs[-1])

    def px(x):
        return left + (pw / 2 if lx1 == lx0 else (math.log2(x) - lx0) / (lx1 - lx0) * pw)

    if log_y:
        y0 = 10 ** math.floor(math.log10(min(ys)))
        y1 = 10 ** math.ceil(math.log10(max(ys)))
        if y1 == y0:
            y1 = y0 * 10

        def py(y):
            return top + ph - (math.log10(y) - math.log10(y0)) / (math.log10(y1) - math.log10(y0)) * ph
        ticks = []
        d = y0
        while d <= y1 * 1.0001:
            ticks.extend(t for t in (d, 2 * d, 5 * d) if t <= y1 * 1.0001)
            d *= 10
    else:
        y1 = _nice_max(max(ys))

        def py(y):
            return top + ph - y / y1 * ph
        ticks = [y1 * i / 5 for i in range(6)]
    body.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#cbd5e0"/>')
    for t in ticks:
        y = py(t)
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#edf2f7"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_esc(_fmt_num(t))}</text>')
    for x in xs:
        body.append(f'<line x1="{px(x):.1f}" y1="{top}" x2="{px(x):.1f}" y2="{top + ph}" stroke="#edf2f7"/>')
        body.append(f'<text x="{px(x):.1f}" y="{top + ph + 16}" text-anchor="middle">{x}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">{_esc(xlabel)}</text>')
    body.append(f'<text x="16" y="{top + ph / 2}" text-anchor="middle" '
                f'transform="rotate(-90 16 {top + ph / 2})">{_esc(ylabel)}</text>')
    for i, s in enumerate(series):
        pts = [(px(x), py(y)) for x, y in s["points"] if y is not None and (y > 0 or not log_y)]
        dash = ' stroke-dasharray="6 4"' if s.get("dash") else ""
        if pts:
            coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
            body.append(f'<polyline points="{coords}" fill="none" stroke="{s["color"]}" stroke-width="2"{dash}/>')
            for a, b in pts:
                body.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="3" fill="{s["color"]}"/>')
        for x, text in sorted((s.get("marks") or {}).items()):
            y = dict(s["points"]).get(x)
            if y is None or (log_y and y <= 0):
                continue
            a, b = px(x), py(y)
            body.append(f'<circle cx="{a:.1f}" cy="{b:.1f}" r="7" fill="none" stroke="#e53e3e" stroke-width="2"/>')
            body.append(f'<text x="{a + 9:.1f}" y="{b - 8:.1f}" fill="#e53e3e" font-size="10">{_esc(text)}</text>')
        ly = top + 10 + i * 20
        lx = left + pw + 15
        body.append(f'<line x1="{lx}" y1="{ly}" x2="{lx + 28}" y2="{ly}" stroke="{s["color"]}" stroke-width="2"{dash}/>')
        body.append(f'<text x="{lx + 34}" y="{ly + 4}">{_esc(s["label"])}</text>')
    return _svg(width, height, body, title)


def bar_chart(title, groups, series, ylabel, fmt=_fmt_num, width=780, height=360):
    """Grouped vertical bars: groups = x labels; series = [(label, color, [value per group])]."""
    left, right, top, bottom = 70, 250, 35, 50
    pw, ph = width - left - right, height - top - bottom
    vals = [v for _, _, vs in series for v in vs if v is not None]
    body = []
    if not vals or not groups:
        body.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text>')
        return _svg(width, height, body, title)
    y1 = _nice_max(max(vals))
    body.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#cbd5e0"/>')
    for i in range(6):
        t = y1 * i / 5
        y = top + ph - t / y1 * ph
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#edf2f7"/>')
        body.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_esc(_fmt_num(t))}</text>')
    gw = pw / len(groups)
    bw = gw * 0.7 / len(series)
    for g, name in enumerate(groups):
        gx = left + g * gw + gw * 0.15
        body.append(f'<text x="{left + g * gw + gw / 2:.1f}" y="{top + ph + 16}" text-anchor="middle">'
                    f'{_esc(name)}</text>')
        for s, (_, color, vs) in enumerate(series):
            v = vs[g] if g < len(vs) else None
            if v is None:
                continue
            h = v / y1 * ph
            x = gx + s * bw
            body.append(f'<rect x="{x:.1f}" y="{top + ph - h:.1f}" width="{bw * 0.92:.1f}" height="{h:.1f}" '
                        f'fill="{color}"/>')
            body.append(f'<text x="{x + bw * 0.46:.1f}" y="{top + ph - h - 4:.1f}" text-anchor="middle" '
                        f'font-size="11">{_esc(fmt(v))}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{height - 12}" text-anchor="middle">connections</text>')
    body.append(f'<text x="16" y="{top + ph / 2}" text-anchor="middle" '
                f'transform="rotate(-90 16 {top + ph / 2})">{_esc(ylabel)}</text>')
    for i, (label, color, _) in enumerate(series):
        ly = top + 10 + i * 20
        lx = left + pw + 15
        body.append(f'<rect x="{lx}" y="{ly - 8}" width="14" height="12" fill="{color}"/>')
        body.append(f'<text x="{lx + 20}" y="{ly + 2}">{_esc(label)}</text>')
    return _svg(width, height, body, title)


def hbar_chart(title, items, xlabel, width=680):
    """Horizontal bars: items = [(label, value, color)]."""
    left, right, top, row = 280, 90, 35, 26
    height = top + row * len(items) + 40
    pw = width - left - right
    vals = [v for _, v, _ in items if v is not None]
    body = []
    if not vals:
        body.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no data</text>')
        return _svg(width, height, body, title)
    x1 = _nice_max(max(vals))
    for i, (label, v, color) in enumerate(items):
        y = top + i * row + 4
        body.append(f'<text x="{left - 8}" y="{y + 14}" text-anchor="end">{_esc(label)}</text>')
        if v is None:
            continue
        w = v / x1 * pw
        body.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{row - 8}" fill="{color}"/>')
        body.append(f'<text x="{left + w + 5:.1f}" y="{y + 14}">{_esc(_fmt_num(v))}</text>')
    body.append(f'<text x="{left + pw / 2}" y="{height - 10}" text-anchor="middle">{_esc(xlabel)}</text>')
    return _svg(width, height, body, title)


# ---------------------------------------------------------------------------
# render

def _m(point, key):
    return (point.get("median") or {}).get(key)


def _ratio(a, b):
    return a / b if a is not None and b else None


def _fr(r, digits=2):
    return "-" if r is None else f"{r:.{digits}f}x"


def _ms(v):
    return "-" if v is None else f"{v:.2f}"


def _rps(v):
    return "-" if v is None else f"{v:,.0f}"


def _kib(v):
    return "-" if v is None else f"{v:,.0f} KiB"


def _threads(t):
    return f"{t} thread{'' if t == 1 else 's'}"


def _holds(ok):
    return "n/a" if ok is None else ("**yes**" if ok else "no")


def _seconds(duration):
    """wrk's duration ("5s", "1m", 10) in seconds, or None."""
    if isinstance(duration, (int, float)):
        return float(duration)
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", str(duration or "").strip())
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[m.group(2)]


def good_rps(point, seconds):
    """Successful requests/s: each round's rate less its errors (non-2xx/3xx and socket errors, spread
    over the round), the median round; the plain median when rounds or the duration are unknown."""
    rounds = point.get("rounds") or []
    if not rounds or not seconds:
        return _m(point, "rps")
    good = sorted(max(0.0, (r.get("rps") or 0) - (r.get("errors") or 0) / seconds) for r in rounds)
    return good[len(good) // 2]


def front_points(part):
    """{conns: {front: point}}"""
    out = {}
    for p in part.get("points", []):
        out.setdefault(p["conns"], {})[p["front"]] = p
    return out


def fronts_table(part):
    rows = ["| conns | front | req/s | p50 ms | p99 ms | errors | timeouts | CPU µs/req | req/s vs HAProxy | "
            "p99 vs HAProxy | CPU vs HAProxy |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for conns, by_front in sorted(front_points(part).items()):
        ha = by_front.get("haproxy")
        for name in FRONT_ORDER:
            p = by_front.get(name)
            if not p:
                continue
            cpu = _m(p, "cpu_us")
            rows.append(
                f"| {conns} | {FRONT_NAMES[name]} | {_rps(_m(p, 'rps'))} | {_ms(_m(p, 'p50_ms'))} | "
                f"{_ms(_m(p, 'p99_ms'))} | {_m(p, 'errors')} | {_m(p, 'timeouts') or 0} | "
                f"{'-' if cpu is None else f'{cpu:.1f}'} | "
                f"{_fr(_ratio(_m(p, 'rps'), _m(ha, 'rps'))) if ha else '-'} | "
                f"{_fr(_ratio(_m(p, 'p99_ms'), _m(ha, 'p99_ms'))) if ha else '-'} | "
                f"{_fr(_ratio(cpu, _m(ha, 'cpu_us'))) if ha else '-'} |")
    return "\n".join(rows)


def lb_vs_haproxy(part):
    """[(conns, rps ratio, p99 ratio, lb errors, lb timeouts)]"""
    out = []
    for conns, by_front in sorted(front_points(part).items()):
        lb, ha = by_front.get("userkey-lb"), by_front.get("haproxy")
        if lb and ha:
            out.append((conns, _ratio(_m(lb, "rps"), _m(ha, "rps")), _ratio(_m(lb, "p99_ms"), _m(ha, "p99_ms")),
                        _m(lb, "errors"), _m(lb, "timeouts") or 0))
    return out


TLS_MODES = {"handshake": "full handshakes", "keepalive": "keep-alive"}


def tls_points(part):
    """{mode: {front: point}}"""
    out = {}
    for p in part.get("points", []):
        out.setdefault(p["mode"], {})[p["front"]] = p
    return out


def tls_lb_vs_haproxy(part):
    """{mode: (rps ratio, p99 ratio, lb errors + timeouts)} for the modes both fronts ran."""
    out = {}
    for mode, by in tls_points(part).items():
        lb, ha = by.get("userkey-lb"), by.get("haproxy")
        if lb and ha:
            out[mode] = (_ratio(_m(lb, "rps"), _m(ha, "rps")), _ratio(_m(lb, "p99_ms"), _m(ha, "p99_ms")),
                         (_m(lb, "errors") or 0) + (_m(lb, "timeouts") or 0))
    return out


def _cpu(v):
    return "-" if v is None else f"{v:.1f}"


def tls_table(part):
    pts = tls_points(part)
    hs, ka = pts.get("handshake", {}), pts.get("keepalive", {})
    neg = part.get("negotiated") or {}
    rows = ["| front | handshakes/s | p99 ms | errors | CPU µs / handshake | wrk CPU µs / handshake | keep-alive req/s | "
            "p99 ms | errors | CPU µs/req | handshakes/s vs HAProxy | keep-alive req/s vs HAProxy | "
            "keep-alive p99 vs HAProxy | negotiated |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name in FRONT_ORDER:
        h, k = hs.get(name), ka.get(name)
        if not h and not k:
            continue
        ha_h, ha_k = hs.get("haproxy"), ka.get("haproxy")
        n = neg.get(name) or {}
        nego = (f"{n.get('protocol', '?')}, {n.get('cipher', '?')}, {n.get('group', '?')}, ALPN {n.get('alpn', '?')}"
                + ("" if n.get("verify") == "0" else f", verify {n.get('verify', '?')}")) if n else "-"

        def err(p):
            return "-" if not p else f"{(_m(p, 'errors') or 0) + (_m(p, 'timeouts') or 0)}"
        rows.append(
            f"| {FRONT_NAMES[name]} | {_rps(_m(h, 'rps')) if h else '-'} | {_ms(_m(h, 'p99_ms')) if h else '-'} | "
            f"{err(h)} | {_cpu(_m(h, 'cpu_us')) if h else '-'} | {_cpu(_m(h, 'client_cpu_us')) if h else '-'} | "
            f"{_rps(_m(k, 'rps')) if k else '-'} | {_ms(_m(k, 'p99_ms')) if k else '-'} | {err(k)} | "
            f"{_cpu(_m(k, 'cpu_us')) if k else '-'} | "
            f"{_fr(_ratio(_m(h, 'rps'), _m(ha_h, 'rps'))) if h and ha_h else '-'} | "
            f"{_fr(_ratio(_m(k, 'rps'), _m(ha_k, 'rps'))) if k and ha_k else '-'} | "
            f"{_fr(_ratio(_m(k, 'p99_ms'), _m(ha_k, 'p99_ms'))) if k and ha_k else '-'} | {nego} |")
    return "\n".join(rows)


def stack_points(data):
    out = {}
    for p in (data.get("stack") or {}).get("points", []):
        out.setdefault(p["conns"], {})[p["stack"]] = p
    return out


def backend_points(data):
    out = {}
    for p in (data.get("backend") or {}).get("points", []):
        out.setdefault(p["conns"], {})[p["scenario"]] = p
    return out


def targets(data):
    """Issue 9's targets: [(target, measured, holds)]."""
    rows = []
    for part in data.get("fronts", []):
        t = part.get("threads")
        ratios = lb_vs_haproxy(part)
        if not ratios:
            continue
        rps_ok = all(r is not None and r >= 1.0 for _, r, _, _, _ in ratios)
        p99_ok = all(p is not None and p <= 1.0 for _, _, p, _, _ in ratios)
        rows.append((f"userkey-lb ≥ 1.0x HAProxy's req/s at every connection count, {_threads(t)} each",
                     ", ".join(f"{_fr(r)} at {c}" for c, r, _, _, _ in ratios), rps_ok))
        rows.append((f"userkey-lb p99 ≤ 1.0x HAProxy's at every connection count, {_threads(t)} each",
                     ", ".join(f"{_fr(p)} at {c}" for c, _, p, _, _ in ratios), p99_ok))
        top = ratios[-1]
        rows.append((f"userkey-lb: 0 errors and 0 timeouts at {top[0]} connections, {_threads(t)}",
                     f"{top[3]} errors, {top[4]} timeouts (all rounds)", top[3] == 0 and top[4] == 0))
    for part in data.get("tls") or []:
        t = part.get("threads")
        r = tls_lb_vs_haproxy(part)
        for mode in ("handshake", "keepalive"):
            if mode in r:
                rr, _, bad = r[mode]
                what = "TLS handshakes/s" if mode == "handshake" else "keep-alive requests/s over TLS"
                rows.append((f"userkey-lb ≥ 1.0x HAProxy's {what}, {_threads(t)} each (issue 10)",
                             f"{_fr(rr)}, userkey-lb errors + timeouts: {bad}", None if rr is None else rr >= 1.0))
    idle = data.get("idle")
    if idle:
        fr = idle["fronts"]
        lb, ng = (fr.get("userkey-lb") or {}).get("per_connection_kib"), (fr.get("nginx") or {}).get("per_connection_kib")
        if lb is not None and ng is not None:
            rows.append((f"memory per idle client connection ≤ nginx's ({idle['connections']:,} connections)",
                         f"userkey-lb {lb:.2f} KiB, nginx {ng:.2f} KiB", lb <= ng))
    sp = stack_points(data)
    if sp:
        rr = [(c, _ratio(_m(p.get("userkey"), "rps") if p.get("userkey") else None,
                         _m(p.get("seed"), "rps") if p.get("seed") else None),
               _ratio(_m(p.get("userkey"), "p99_ms") if p.get("userkey") else None,
                      _m(p.get("seed"), "p99_ms") if p.get("seed") else None))
              for c, p in sorted(sp.items())]
        rows.append(("whole stack ≥ 10x the seed stack's req/s, 16-256 connections",
                     ", ".join(f"{_fr(r, 1)} at {c}" for c, r, _ in rr),
                     all(r is not None and r >= 10 for _, r, _ in rr)))
        rows.append(("whole stack p99 ≤ 0.2x the seed stack's, 16-256 connections",
                     ", ".join(f"{_fr(p, 3)} at {c}" for c, _, p in rr),
                     all(p is not None and p <= 0.2 for _, _, p in rr)))
    bp = backend_points(data)
    for conns, by in sorted(bp.items()):
        y = by.get("httplib-constant")
        hit = by.get("mongo-cache-log")
        hit_off = by.get("mongo-cache-nolog")
        if y and hit:
            r = _ratio(_m(hit, "rps"), _m(y, "rps"))
            rows.append((f"backend on cache hits (default: access log on) ≥ 0.8x a constant cpp-httplib server, "
                         f"{conns} connections", f"{_fr(r)} ({_rps(_m(hit, 'rps'))} vs {_rps(_m(y, 'rps'))} req/s)",
                         None if r is None else r >= 0.8))
        for on_key, off_key, what in (("mongo-cache-log", "mongo-cache-nolog", "cache hits"),
                                      ("dump-log", "dump-nolog", "embedded dump")):
            on, off = by.get(on_key), by.get(off_key)
            if on and off and _m(off, "rps"):
                cost = 1 - _m(on, "rps") / _m(off, "rps")
                rows.append((f"the default access log costs ≤ 10% ({what}, {conns} connections)",
                             f"{cost * 100:.1f}% ({_rps(_m(on, 'rps'))} vs {_rps(_m(off, 'rps'))} req/s)",
                             cost <= 0.10))
        if hit_off and y and not hit:
            r = _ratio(_m(hit_off, "rps"), _m(y, "rps"))
            rows.append(("backend on cache hits ≥ 0.8x a constant cpp-httplib server", _fr(r),
                         None if r is None else r >= 0.8))
    return rows


def headline(data, rel_md="docs/benchmarks.md"):
    parts = []
    sp = stack_points(data)
    if sp:
        cs, rs = [], []
        for c, p in sorted(sp.items()):
            u, s = p.get("userkey"), p.get("seed")
            if u and s:
                cs.append(str(c))
                rs.append(_fr(_ratio(_m(u, "rps"), _m(s, "rps")), 1))
        if cs:
            parts.append(f"the whole stack serves **{' / '.join(rs)}** the requests/s of the seed's stack (Flask + "
                         f"uWSGI + nginx, same FerretDB) at {' / '.join(cs)} connections")
    for part in data.get("fronts", []):
        ratios = lb_vs_haproxy(part)
        rr = [f"{r:.2f}" for _, r, _, _, _ in ratios if r is not None]
        pp = [f"{p:.2f}" for _, _, p, _, _ in ratios if p is not None]
        if rr and pp:
            t = part.get("threads")
            parts.append(f"userkey-lb at {t} thread{'s' if t != 1 else ''} (HAProxy and nginx likewise) does "
                         f"{' / '.join(rr)}x HAProxy's requests/s with {' / '.join(pp)}x its p99 at "
                         f"{' / '.join(str(c) for c, *_ in ratios)} connections")
    for part in (data.get("tls") or [])[:1]:
        r = tls_lb_vs_haproxy(part)
        if "handshake" in r and "keepalive" in r and None not in (r["handshake"][0], r["keepalive"][0]):
            parts.append(f"terminating TLS it does {r['handshake'][0]:.2f}x HAProxy's full handshakes/s and "
                         f"{r['keepalive'][0]:.2f}x its keep-alive requests/s")
    idle = data.get("idle")
    if idle:
        fr = idle["fronts"]
        vals = {k: (fr.get(k) or {}).get("per_connection_kib") for k in ("userkey-lb", "haproxy", "nginx")}
        if all(v is not None for v in vals.values()):
            parts.append(f"an idle client connection costs userkey-lb {vals['userkey-lb']:.1f} KiB "
                         f"(HAProxy {vals['haproxy']:.1f}, nginx {vals['nginx']:.1f})")
    if not parts:
        return "No benchmark results yet: run `make bench`."
    text = "; ".join(parts)
    when = data.get("date", "")
    quick = " (a QUICK smoke-test run: 1 s per point, not a scoreboard)" if data.get("quick") else ""
    partial = " **Incomplete run**: some parts failed, see the notes in the report." if data.get("notes") else ""
    return (f"Latest `make bench` ({when}, {data.get('machine', {}).get('nproc', '?')} cores, everything on one "
            f"machine){quick}: {text}.{partial} Tables, plots and method: [{rel_md}]({rel_md}).")


def render(args):
    with open(args.results) as f:
        data = json.load(f)
    os.makedirs(args.svg_dir, exist_ok=True)
    md_dir = os.path.dirname(os.path.abspath(args.md))
    svg_rel = os.path.relpath(os.path.abspath(args.svg_dir), md_dir)
    results_rel = os.path.relpath(os.path.abspath(args.results), md_dir)
    svgs = {}

    # Plots of the fronts: one line per front and thread count.
    dash = {1: False, 2: True}
    # Requests/s counts successful answers only (a front that fails requests
    # fast must not look fastest); a point whose rounds had errors or
    # timeouts is ringed with their count.
    for metric, key, ylabel, log_y in (("rps", "rps", "successful requests/s (median round)", False),
                                       ("p99", "p99_ms", "p99 latency, ms (log scale)", True)):
        series = []
        for part in data.get("fronts", []):
            t = part.get("threads")
            seconds = _seconds(part.get("duration"))
            pts = front_points(part)
            for name in FRONT_ORDER:
                xy = [(c, good_rps(by[name], seconds) if metric == "rps" else _m(by[name], key))
                      for c, by in sorted(pts.items()) if name in by]
                marks = {}
                for c, by in pts.items():
                    bad = (_m(by[name], "errors") or 0) + (_m(by[name], "timeouts") or 0) if name in by else 0
                    if bad:
                        marks[c] = f"{_fmt_num(bad)} errors"
                if xy:
                    series.append({"label": f"{FRONT_NAMES[name]}, {t} thr", "color": COLORS[name],
                                   "dash": dash.get(t, t != 1), "points": xy, "marks": marks})
        title = ("Fronts: requests/s" if metric == "rps" else "Fronts: p99 latency") + \
            " vs connections (solid 1 thread, dashed 2)"
        svgs[f"fronts-{metric}.svg"] = line_chart(title, series, "client connections (wrk)", ylabel, log_y=log_y)

    sp = stack_points(data)
    if sp:
        conns = sorted(sp)
        for metric, key, ylabel in (("rps", "rps", "requests/s"), ("p99", "p99_ms", "p99 latency, ms")):
            series = [("userkey (3 backends + userkey-lb)", COLORS["userkey"],
                       [_m(sp[c]["userkey"], key) if "userkey" in sp[c] else None for c in conns]),
                      ("seed (3 uWSGI Flask + nginx)", COLORS["seed"],
                       [_m(sp[c]["seed"], key) if "seed" in sp[c] else None for c in conns])]
            title = f"Whole stack vs the seed's stack, one FerretDB: {'requests/s' if metric == 'rps' else 'p99'}"
            svgs[f"stack-{metric}.svg"] = bar_chart(title, [str(c) for c in conns], series, ylabel)

    bp = backend_points(data)
    labels = (data.get("backend") or {}).get("labels", {})
    for conns, by in sorted(bp.items()):
        items = []
        for key, p in by.items():
            color = COLORS["yardstick"] if key == "httplib-constant" else COLORS["userkey"]
            items.append((labels.get(key, key), _m(p, "rps"), color))
        svgs[f"backend-{conns}.svg"] = hbar_chart(f"The backend alone, {conns} connections: requests/s", items,
                                                  "requests/s (median round)")

    for name, text in svgs.items():
        with open(os.path.join(args.svg_dir, name), "w") as f:
            f.write(text)

    md = render_markdown(data, svg_rel, results_rel, sorted(svgs))
    with open(args.md, "w") as f:
        f.write(md)
    line = headline(data, os.path.relpath(os.path.abspath(args.md), os.path.dirname(os.path.abspath(args.readme)))
                    if args.readme else "docs/benchmarks.md")
    if args.readme:
        with open(args.readme) as f:
            readme = f.read()
        pattern = re.compile(re.escape(HEADLINE_START) + r".*?" + re.escape(HEADLINE_END), re.S)
        if not pattern.search(readme):
            sys.exit(f"report.py: {args.readme} has no {HEADLINE_START} ... {HEADLINE_END} section")
        readme = pattern.sub(lambda _: f"{HEADLINE_START}\n{line}\n{HEADLINE_END}", readme)
        with open(args.readme, "w") as f:
            f.write(readme)
    print(line)
    print(f"report: {args.md}, {len(svgs)} plots in {args.svg_dir}", file=sys.stderr)


def render_markdown(data, svg_rel, results_rel, svg_names):
    out = []
    w = out.append
    w("# Benchmarks\n")
    w(f"<!-- Generated by bench/report.py from {results_rel} (`make bench`); do not edit by hand. -->\n")
    if data.get("quick"):
        w("> **Quick mode** (`make bench BENCH_QUICK=1`): 1 s per point, one round, fewer connection counts, "
          "1,000 idle connections. A smoke test of the pipeline, not a scoreboard.\n")
    w(headline(data, "benchmarks.md").replace("[benchmarks.md](benchmarks.md)", "below") + "\n")
    mach = data.get("machine", {})
    w(f"Run on {data.get('date', '?')} in {data.get('elapsed_s', '?')} s. Raw results (every round): "
      f"[{os.path.basename(results_rel)}]({results_rel}).\n")
    for note in data.get("notes") or []:
        w(f"> {note}\n")

    w("## Targets (issue 9)\n")
    w("| target | measured | holds |\n|---|---|---|")
    for t, m, ok in targets(data):
        w(f"| {t} | {m} | {_holds(ok)} |")
    w("")

    w("## Machine and versions\n")
    w(f"- {mach.get('nproc', '?')} cores ({mach.get('cpu', '?')}), {mach.get('memory_mib', '?')} MiB, "
      f"kernel {mach.get('kernel', '?')}, {mach.get('os', '?')}")
    w("- Everything (wrk, the fronts, the backends, FerretDB) shares those cores on loopback, so absolute numbers "
      "move between runs; compare within one run. The machine may be shared with other work.")
    for k, v in (data.get("versions") or {}).items():
        w(f"- {k}: `{v}`")
    w("")

    for part in data.get("fronts", []):
        t = part.get("threads")
        w(f"## Fronts at {_threads(t)} / worker{'' if t == 1 else 's'} each\n")
        w(f"userkey-lb `--threads {t}`, HAProxy `nbthread {t}`, nginx `worker_processes {t}`, in front of the same "
          f"three userkey-backend processes (embedded dump), each with {part.get('max_conns')} connections per "
          f"upstream at most (lb `max_conns`, HAProxy `maxconn`, nginx `max_conns` + `keepalive`), access logs "
          f"off. wrk `-d{part.get('duration')}`, {part.get('rounds')} rounds per point, the fronts interleaved (a "
          f"different one first each round), the median round shown; errors and timeouts are summed over the "
          f"rounds. CPU is the front's user + system time per request.\n")
        w(fronts_table(part) + "\n")
    if "fronts-rps.svg" in svg_names:
        w(f"![requests/s per front]({svg_rel}/fronts-rps.svg)\n")
        w(f"![p99 per front]({svg_rel}/fronts-p99.svg)\n")

    for part in data.get("tls") or []:
        t = part.get("threads")
        neg = part.get("negotiated") or {}
        w(f"## TLS termination, {_threads(t)} / worker{'' if t == 1 else 's'} each\n")
        w(f"Each front terminates TLS itself (userkey-lb `--listen off --tls-listen`, HAProxy `bind ... ssl crt`, "
          f"nginx `listen ... ssl`) with the same certificate ({part.get('certificate', '?')}), TLS 1.2 + 1.3 "
          f"allowed and the same suites and groups configured on all three, in front of the same three backends as "
          f"above ({part.get('max_conns')} connections per upstream at most, access logs off). **Full "
          f"handshakes**: wrk `-c{part.get('handshake_conns')} -H 'Connection: close'`, so each request comes on a "
          f"new TCP connection with a full TLS handshake and is proxied once. **Keep-alive**: wrk "
          f"`-c{part.get('keepalive_conns')}` over established TLS connections. wrk `-d{part.get('duration')}`, "
          f"{part.get('rounds')} interleaved rounds (a different front first each round), each figure the median "
          f"of its rounds, errors and timeouts summed over the rounds. CPU is the front's user + system time per request; \"wrk CPU\" is the client's own.\n")
        w(f"Client: {part.get('client', '?')}.\n")
        w(tls_table(part) + "\n")
        seen = neg.get("wrk")
        if seen:
            w(f"What wrk negotiated, from a 1 s handshake run against a separate logging nginx: "
              f"{seen.get('protocol')}, {seen.get('cipher')}, {seen.get('group')}; {seen.get('resumed')} of "
              f"{seen.get('connections')} connections resumed a session.\n")
        w("\nThe client shares the 2 cores with the front and the backends, and a TLS 1.3 client does at "
          "least as much public-key work per handshake as the server (an X25519 exchange and an ECDSA P-256 "
          "verification against the server's X25519 exchange and ECDSA signature): compare \"wrk CPU\" with "
          "the front's. Where the client's CPU per handshake is the larger, the handshake rates are bounded "
          "by the client as much as by the front, and the ratios between fronts understate their differences.\n")

    idle = data.get("idle")
    if idle:
        n = idle.get("connections")
        w(f"## Memory per idle client connection ({n:,} connections)\n")
        w(f"On each front as started (1 thread / worker each, before any load): {n:,} keep-alive connections "
          f"opened, one request each, then left idle; the front's RSS (all its processes) before and after, "
          f"divided by the connections held open (answered, any status). Then wrk -c64 for {idle.get('load_seconds')} s while they stay "
          f"open: the front's peak RSS.\n")
        w("| front | RSS before | RSS, idle | per idle connection | answered 200 | still open | "
          "RSS peak, idle + load | req/s under load | errors under load |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name in FRONT_ORDER:
            r = idle["fronts"].get(name)
            if not r:
                continue
            load = r.get("load") or {}
            per = r.get("per_connection_kib")
            w(f"| {FRONT_NAMES[name]} | {_kib(r.get('rss_before_kib'))} | {_kib(r.get('rss_idle_kib'))} | "
              f"{'-' if per is None else f'{per:.2f} KiB'} | {r.get('answered_200')} | "
              f"{load.get('idle_still_open', r.get('idle_still_open', '-'))} | {_kib(load.get('rss_peak_kib'))} | "
              f"{_rps(load.get('rps'))} | {load.get('errors', '-')} |")
        w("")

    streams = data.get("streams")
    if streams:
        w(f"## Streams: a {streams.get('download_mib')} MiB download, {streams.get('uploads')} stalled uploads, "
          f"WebSocket\n")
        w("bench/streams.py, each front fresh for each measurement, one thread / worker each: the first body byte "
          "of a download (and whether it came while the upstream still sent), the transfer and the front's peak RSS "
          f"growth; {streams.get('uploads')} clients each sending all but the last byte of a "
          f"{streams.get('upload_kib')} KiB POST, then stalling: the front's RSS growth and how much reached the "
          "upstream (nginx's default request buffering holds bodies in temp files until they are whole); "
          "WebSocket messages echoed per second through each front to one python3-websockets upstream (the "
          "Python ends bound the rate: the ratio says whether a front costs anything).\n")
        w("| front | first byte | while the upstream still sent | transfer | RSS growth, peak | uploads: RSS growth | "
          "through to the upstream | answered 200 | WebSocket msgs/s | vs HAProxy |")
        w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        fr = streams.get("fronts") or {}
        ha_ws = (fr.get("haproxy") or {}).get("websocket_msgs_per_s")
        for name in FRONT_ORDER:
            r = fr.get(FRONT_NAMES[name]) or fr.get(name)
            if not r:
                continue
            d, u, ws = r.get("download") or {}, r.get("uploads") or {}, r.get("websocket_msgs_per_s")
            through = (u.get("upstream_bytes_when_stalled") or 0) / u["sent_bytes"] * 100 if u.get("sent_bytes") else None
            w(f"| {FRONT_NAMES[name]} | {_ms(d.get('ttfb_ms'))} ms | {'yes' if d.get('first_byte_while_sending') else 'no'} | "
              f"{d.get('seconds', 0):.2f} s | {_kib(d.get('rss_growth_kib'))} | {_kib(u.get('rss_growth_kib'))} | "
              f"{'-' if through is None else f'{through:.0f}%'} | {u.get('answered_200', '-')} | "
              f"{'-' if ws is None else f'{ws:,.0f}'} | {_fr(_ratio(ws, ha_ws)) if ws and ha_ws else '-'} |")
        w("")

    st = data.get("stack")
    if st:
        db = data.get("ferretdb") or {}
        w("## The whole stack against the seed's, on one FerretDB\n")
        w("userkey: three userkey-backend on `--mongo-uri` with their cache (defaults: 30 s TTL, access log on) "
          "behind userkey-lb (defaults: 1 thread, access log on). The seed's stack, written fresh in "
          "[bench/seed-stack/](../bench/seed-stack/) from the seed's description: a Flask + pymongo app, three "
          "uWSGI instances of 2 processes x 2 threads each with `--lazy-apps`, behind nginx (`worker_processes "
          "auto`, access log on) with `uwsgi_pass`. Both read the same FerretDB "
          f"({db.get('version', '?')}, SQLite handler, authentication on), seeded by `userkey-admin restore` "
          "with the seed's **7 users**: FerretDB's SQLite handler pushes down only `_id` equality filters, so "
          "every lookup by `user_id` scans the collection, and a large collection would measure FerretDB rather "
          "than the service. wrk asks for users 1..7 in turn (bench/users.lua). CPU per request counts every "
          "process of the stack and FerretDB.\n")
        w("| conns | stack | req/s | p50 ms | p99 ms | errors | CPU µs/req | req/s vs seed | p99 vs seed |")
        w("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
        for c, by in sorted(stack_points(data).items()):
            seed = by.get("seed")
            for name in ("userkey", "seed"):
                p = by.get(name)
                if not p:
                    continue
                cpu = _m(p, "cpu_us")
                w(f"| {c} | {name} | {_rps(_m(p, 'rps'))} | {_ms(_m(p, 'p50_ms'))} | {_ms(_m(p, 'p99_ms'))} | "
                  f"{_m(p, 'errors')} | {'-' if cpu is None else f'{cpu:.1f}'} | "
                  f"{_fr(_ratio(_m(p, 'rps'), _m(seed, 'rps')), 1) if seed else '-'} | "
                  f"{_fr(_ratio(_m(p, 'p99_ms'), _m(seed, 'p99_ms')), 3) if seed else '-'} |")
        w("")
        if "stack-rps.svg" in svg_names:
            w(f"![whole stack vs seed stack, requests/s]({svg_rel}/stack-rps.svg)\n")
            w(f"![whole stack vs seed stack, p99]({svg_rel}/stack-p99.svg)\n")

    be = data.get("backend")
    if be:
        w("## The backend alone\n")
        w("One userkey-backend process driven directly by wrk (users 1..7 in turn), in each configuration below, "
          "against a cpp-httplib server that answers a constant body of the same size and does no lookup "
          "([bench/httplib-constant.cpp](../bench/httplib-constant.cpp), Debian's cpp-httplib, a thread pool "
          "larger than the connection count, keep-alive unlimited): the limit of that HTTP layer here. The "
          "MongoDB scenarios use the FerretDB above; \"no cache\" is `--cache-ttl 0`, so every request is a "
          "FerretDB query. Rounds interleaved as above; CPU is the server process's.\n")
        labels = be.get("labels", {})
        for c, by in sorted(backend_points(data).items()):
            y = by.get("httplib-constant")
            w(f"{c} connections:\n")
            w("| configuration | req/s | p50 ms | p99 ms | errors | CPU µs/req | req/s vs cpp-httplib constant |")
            w("|---|---:|---:|---:|---:|---:|---:|")
            for key, p in by.items():
                cpu = _m(p, "cpu_us")
                w(f"| {labels.get(key, key)} | {_rps(_m(p, 'rps'))} | {_ms(_m(p, 'p50_ms'))} | "
                  f"{_ms(_m(p, 'p99_ms'))} | {_m(p, 'errors')} | {'-' if cpu is None else f'{cpu:.1f}'} | "
                  f"{_fr(_ratio(_m(p, 'rps'), _m(y, 'rps'))) if y else '-'} |")
            w("")
            if f"backend-{c}.svg" in svg_names:
                w(f"![the backend alone, {c} connections]({svg_rel}/backend-{c}.svg)\n")

    w("## Exact commands\n")
    w("Everything above came from one command, which ran these in turn:\n")
    w("```sh")
    for c in data.get("commands", []):
        w(c)
    w("```\n")
    for part in data.get("fronts", []):
        t = part.get("threads")
        w(f"<details><summary>Fronts at {_threads(t)}: the exact configurations</summary>\n")
        w("```sh")
        w(f"# backends (x3)\n{part.get('backend_command', '?')}")
        w(f"# userkey-lb\n{part.get('lb_command', '?')}")
        w(f"# load, per point\n{part.get('wrk_command', '?')}")
        w("```\n")
        if part.get("haproxy_cfg"):
            w("HAProxy (`haproxy -f haproxy.cfg -db`):\n")
            w("```\n" + part["haproxy_cfg"].rstrip() + "\n```\n")
        if part.get("nginx_conf"):
            w("nginx (`nginx -c nginx.conf -g 'daemon off;'`):\n")
            w("```\n" + part["nginx_conf"].rstrip() + "\n```\n")
        w("</details>\n")
    for part in data.get("tls") or []:
        t = part.get("threads")
        w(f"<details><summary>TLS termination at {_threads(t)}: the exact configurations</summary>\n")
        w("```sh")
        w(f"# backends (x3)\n{part.get('backend_command', '?')}")
        w(f"# userkey-lb\n{part.get('lb_command', '?')}")
        w(f"# load: full handshakes\n{part.get('handshake_command', '?')}")
        w(f"# load: keep-alive\n{part.get('keepalive_command', '?')}")
        w("```\n")
        for key, what in (("client_openssl_cnf", "The clients' OpenSSL configuration (`OPENSSL_CONF`)"),
                          ("haproxy_cfg", "HAProxy (`haproxy -f haproxy.cfg -db`)"),
                          ("nginx_conf", "nginx (`nginx -c nginx.conf -g 'daemon off;'`)")):
            if part.get(key):
                w(f"{what}:\n")
                w("```\n" + part[key].rstrip() + "\n```\n")
        w("</details>\n")
    if st or be:
        w("<details><summary>Whole stack and backend alone: the exact commands</summary>\n")
        w("```sh")
        db = data.get("ferretdb") or {}
        w(f"# FerretDB, then {db.get('seeded_by', '?')}\n{db.get('command', '?')}")
        for k, v in ((st or {}).get("commands") or {}).items():
            w(f"# {k}\n{v}")
        for k, v in ((be or {}).get("commands") or {}).items():
            w(f"# backend alone: {k}\n{v}")
        w(f"# load, per point\n{(data.get('stack_settings') or {}).get('wrk', '?')}")
        w("```\n")
        if st and st.get("uwsgi_ini"):
            w("uWSGI (`bench/seed-stack/uwsgi.ini`):\n")
            w("```ini\n" + st["uwsgi_ini"].rstrip() + "\n```\n")
        if st and st.get("nginx_conf"):
            w("The seed stack's nginx:\n")
            w("```\n" + st["nginx_conf"].rstrip() + "\n```\n")
        w("</details>\n")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--out", required=True)
    c.add_argument("--fronts", nargs="*", default=[])
    c.add_argument("--tls", nargs="*", default=[], help="bench/tls.sh --json outputs")
    c.add_argument("--stack")
    c.add_argument("--streams", help="bench/streams.py --json output")
    c.add_argument("--bin", default="")
    c.add_argument("--elapsed", type=int, default=None)
    c.add_argument("--quick", default="0")
    c.add_argument("--command", action="append")
    c.add_argument("--note", action="append", help="a sentence the report shows under the run's date")
    r = sub.add_parser("render")
    r.add_argument("results")
    r.add_argument("--md", required=True)
    r.add_argument("--svg-dir", required=True)
    r.add_argument("--readme")
    args = ap.parse_args(argv)
    if args.cmd == "collect":
        collect(args)
    else:
        render(args)


if __name__ == "__main__":
    main()
