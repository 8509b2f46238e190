#!/usr/bin/env python3
"""Self-test of bench/report.py (CTest `bench_report`, label bench): renders
bench/fixtures/report-sample.json (invented numbers) into a scratch folder and
checks that every table (the TLS one included), plot and the README headline
come out. No benchmark runs; a few tenths of a second."""
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    work = tempfile.mkdtemp(prefix="bench-report-test-")
    failures = []

    def check(cond, what):
        print(("ok    " if cond else "FAIL  ") + what)
        if not cond:
            failures.append(what)

    try:
        readme = os.path.join(work, "README.md")
        with open(readme, "w") as f:
            f.write("intro\n<!-- bench:headline -->\nplaceholder\n<!-- /bench:headline -->\nrest\n")
        md = os.path.join(work, "docs", "benchmarks.md")
        os.makedirs(os.path.dirname(md))
        svg_dir = os.path.join(work, "docs", "benchmarks")
        out = subprocess.run([sys.executable, os.path.join(HERE, "report.py"), "render",
                              os.path.join(HERE, "fixtures", "report-sample.json"), "--md", md, "--svg-dir", svg_dir,
                              "--readme", readme], capture_output=True, text=True)
        check(out.returncode == 0, f"report.py render exits 0 ({out.stderr.strip()[-300:]})")
        text = open(md).read() if os.path.exists(md) else ""
        for heading in ("## Targets (issue 9)", "## Machine and versions", "## Fronts at 1 thread / worker each",
                        "## Fronts at 2 threads / workers each", "## Memory per idle client connection",
                        "## TLS termination, 1 thread / worker each",
                        "## The whole stack against the seed's, on one FerretDB", "## The backend alone",
                        "## Exact commands"):
            check(heading in text, f"benchmarks.md has '{heading}'")
        check("| 1024 | userkey-lb | 27,500 | 31.00 | 95.00 | 3 | 3 | 20.0 | 0.98x | 1.06x | 1.00x |" in text,
              "fronts table row with medians and ratios to HAProxy")
        check("| userkey-lb | 2,100 | 11.00 | 0 | 240.0 | 400.0 | 19,000 | 4.00 | 2 | 42.0 | 1.05x | 0.95x | 0.80x | "
              "TLSv1.3, TLS_AES_128_GCM_SHA256, X25519, ALPN http/1.1 |" in text,
              "TLS row: handshakes/s, keep-alive req/s, p99, ratios to HAProxy, negotiated parameters")
        check("Client: wrk 4.1.0" in text and "0 of 900 connections resumed" in text,
              "TLS section names the client and what it negotiated")
        check("| userkey-lb ≥ 1.0x HAProxy's TLS handshakes/s, 1 thread each (issue 10) | 1.05x, userkey-lb errors "
              "+ timeouts: 0 | **yes** |" in text and
              "| userkey-lb ≥ 1.0x HAProxy's keep-alive requests/s over TLS, 1 thread each (issue 10) | 0.95x, "
              "userkey-lb errors + timeouts: 2 | no |" in text, "targets table judges the TLS targets")
        check("TLS termination at 1 thread: the exact configurations" in text and "ssl crt combined.pem" in text,
              "TLS configurations in the exact-commands section")
        check("| 16 | userkey | 34,000 | 0.40 | 0.80 | 0 | 20.0 | 14.2x | 0.050x |" in text,
              "whole-stack row with ratios to the seed stack")
        check("| MongoDB + cache (hits), access log on | 39,000 |" in text and "0.87x |" in text,
              "backend-alone row with its ratio to the cpp-httplib yardstick")
        check("| userkey-lb | 9,000 KiB | 14,400 KiB | 5.40 KiB |" in text, "idle-memory row")
        check("| whole stack ≥ 10x the seed stack's req/s, 16-256 connections | 14.2x at 16, 14.0x at 64, "
              "10.8x at 256 | **yes** |" in text, "targets table judges the whole-stack target")
        check("| memory per idle client connection ≤ nginx's (1,000 connections) | userkey-lb 5.40 KiB, "
              "nginx 0.80 KiB | no |" in text, "targets table judges the idle-memory target")
        for name in ("fronts-rps", "fronts-p99", "stack-rps", "stack-p99", "backend-64"):
            path = os.path.join(svg_dir, name + ".svg")
            try:
                root = ET.parse(path).getroot()
                shapes = [e for e in root.iter() if e.tag.split("}")[-1] in ("polyline", "rect")]
                check(root.tag.endswith("svg") and len(shapes) > 3, f"{name}.svg is SVG with data shapes")
            except (OSError, ET.ParseError) as e:
                check(False, f"{name}.svg parses ({e})")
            check(f"benchmarks/{name}.svg" in text, f"benchmarks.md links {name}.svg")
        check("## Streams: a 1024 MiB download, 300 stalled uploads, WebSocket" in text and
              "| userkey-lb | 4.20 ms | yes | 0.90 s |" in text and "| nginx |" in text and "| 0% | 300 |" in text
              and "| 6,400 | 1.00x |" in text, "streams section with each front's row and the WebSocket ratio")
        rps_svg = open(svg_dir + "/fronts-rps.svg").read()
        check("successful requests/s" in rps_svg and "900 errors" in rps_svg and "120 errors" in rps_svg,
              "fronts-rps.svg plots successful requests/s and rings the points that had errors")
        sys.path.insert(0, HERE)
        import report  # noqa: E402 (the module under test, beside this file)
        good = report.good_rps({"rounds": [{"rps": 100.0, "errors": 250}, {"rps": 90.0, "errors": 0},
                                           {"rps": 120.0, "errors": 0}], "median": {"rps": 100.0}}, 5.0)
        check(good == 90.0, f"good_rps takes each round's errors out before the median (90, found {good})")
        lines = rps_svg.count("<polyline")
        check(lines == 6, f"fronts-rps.svg has one line per front and thread count (6, found {lines})")
        r = open(readme).read()
        check("1.05x HAProxy's full handshakes/s and 0.95x its keep-alive requests/s" in r, "README headline has TLS")
        check("placeholder" not in r and "14.2x / 14.0x / 10.8x" in r and r.startswith("intro\n")
              and r.endswith("rest\n"), "README headline replaced between the markers, nothing else")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("report.py self-test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
