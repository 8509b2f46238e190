#!/usr/bin/env python3
"""The whole stack against the seed's, and the backend alone, on one FerretDB.

One FerretDB (SQLite handler, authentication on) is started on a free port
and seeded from dump/ by `userkey-admin restore` (the seed's 7 users). Then:

  stack    userkey (3 userkey-backend on --mongo-uri with their cache, behind
           userkey-lb) against the seed's stack, written fresh in
           bench/seed-stack/ (3 uWSGI instances of a Flask + pymongo app, 2
           processes x 2 threads each, --lazy-apps, behind nginx with
           uwsgi_pass). Every program at its defaults (access logs on).
  backend  one backend process, driven directly: the embedded dump, MongoDB
           with the cache (all hits after warm-up), MongoDB without the cache
           (--cache-ttl 0), each with the access log on (the default) and off;
           and bench/httplib-constant.cpp, a cpp-httplib server answering a
           constant body (built here with g++).

Every point is measured --rounds times, the contenders interleaved (a
different one first in each round), with bench/users.lua asking for users
1..7 in turn; the JSON keeps every round and the medians. Progress goes to
stderr.

    bench/stack.py --bin build-release/apps --json out.json [--duration 5s] [--rounds 3]
                   [--stack-conns "16 64 256"] [--backend-conns 64] [--parts stack,backend]

FerretDB's SQLite handler pushes down only `_id` equality filters, so every
lookup by user_id scans the collection: keep it small (the seed's 7 users).
"""
import argparse
import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import benchlib  # noqa: E402

MONGO_USER, MONGO_PASS = "userkey", "userkey-bench"
SCRIPT = os.path.join(HERE, "users.lua")


class Processes:
    """Children started with their output in WORK/NAME.log, stopped at exit."""

    def __init__(self, work):
        self.work = work
        self.procs = []
        atexit.register(self.stop_all)

    def start(self, name, argv, env=None, port=None):
        log = open(os.path.join(self.work, name + ".log"), "wb")
        full_env = dict(os.environ, **(env or {}))
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=full_env, cwd=REPO)
        p.bench_name = name
        p.bench_argv = argv
        self.procs.append(p)
        if port is not None and not benchlib.wait_port(port, 30, p):
            sys.exit(f"stack.py: {name} did not open port {port}; log:\n" + self.log(name))
        return p

    def log(self, name):
        try:
            with open(os.path.join(self.work, name + ".log"), errors="replace") as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def stop(self, procs):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = [p for p in self.procs if p not in procs]

    def stop_all(self):
        self.stop(list(reversed(self.procs)))


def get(port, path="/?user_id=1"):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.status, r.read().decode()


def check_answers(name, port):
    """The contender answers user 1 with the seed's key (else nothing is measured)."""
    try:
        status, body = get(port)
    except Exception as e:  # noqa: BLE001 - any failure ends the run with the reason
        sys.exit(f"stack.py: {name} on port {port} does not answer: {e}")
    if status != 200 or "one@5cdb5896d7c8" not in body:
        sys.exit(f"stack.py: {name} answered {status} {body!r}")


def measure(contenders, conns_list, args, label_key):
    """contenders: [(name, port, pids)]; rounds interleaved. -> points."""
    points = []
    turn = 0
    for conns in conns_list:
        rounds = {name: [] for name, _, _ in contenders}
        for rnd in range(1, args.rounds + 1):
            order = contenders[turn % len(contenders):] + contenders[:turn % len(contenders)]
            turn += 1
            for name, port, pids in order:
                time.sleep(args.settle)
                url = f"http://127.0.0.1:{port}/"
                benchlib.warm(url, conns, SCRIPT)
                r = benchlib.run_wrk(url, conns, args.duration, pids, SCRIPT)
                r["round"] = rnd
                rounds[name].append(r)
                print(f"{label_key}={name} conns={conns} round={rnd}: {r['rps']:.0f} req/s, p99 {r['p99_ms']:.2f} ms, "
                      f"{r['errors']} errors, {r['cpu_us']:.1f} us CPU/req", file=sys.stderr)
        for name, _, _ in contenders:
            points.append({"conns": conns, label_key: name, "rounds": rounds[name],
                           "median": benchlib.median_of(rounds[name])})
    return points


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"


def start_ferretdb(procs, work, ferretdb):
    port = benchlib.free_port()
    data = os.path.join(work, "ferretdb")
    os.makedirs(data)
    argv = [ferretdb, "--handler=sqlite", f"--sqlite-url=file:{data}/", f"--listen-addr=127.0.0.1:{port}",
            f"--state-dir={data}", "--telemetry=disable", "--debug-addr=-", "--log-level=warn",
            "--test-enable-new-auth", "--setup-database=admin", f"--setup-username={MONGO_USER}",
            f"--setup-password={MONGO_PASS}"]
    p = procs.start("ferretdb", argv, port=port)
    return p, port, argv


def part_stack(procs, args, uri, creds, db_pid):
    work = procs.work
    bin_dir = args.bin
    # userkey: 3 backends on MongoDB with their cache, behind the lb; defaults otherwise.
    uk, backend_ports = [], []
    for i in range(1, 4):
        port = benchlib.free_port()
        argv = [f"{bin_dir}/userkey-backend", "--listen", f"127.0.0.1:{port}", "--name", f"backend-{i}",
                "--mongo-uri", uri]
        uk.append(procs.start(f"uk-backend-{i}", argv, env=creds, port=port))
        backend_ports.append(port)
    lb_port = benchlib.free_port()
    lb_argv = [f"{bin_dir}/userkey-lb", "--listen", f"127.0.0.1:{lb_port}", "--admin", "off"]
    for port in backend_ports:
        lb_argv += ["--upstream", f"127.0.0.1:{port}"]
    uk.append(procs.start("uk-lb", lb_argv, port=lb_port))

    # The seed's stack: 3 uWSGI (2 processes x 2 threads, --lazy-apps) behind nginx uwsgi_pass.
    seed, seed_ports = [], []
    ini = os.path.join(HERE, "seed-stack", "uwsgi.ini")
    for i in range(1, 4):
        port = benchlib.free_port()
        env = dict(creds, SEED_MONGO_URI=uri, SEED_PORT=str(port), SEED_NAME=f"flask-{i}")
        argv = [args.uwsgi, "--ini", ini, "--socket", f"127.0.0.1:{port}"]
        seed.append(procs.start(f"seed-uwsgi-{i}", argv, env=env, port=port))
        seed_ports.append(port)
    nginx_port = benchlib.free_port()
    nginx_dir = os.path.join(work, "seed-nginx")
    os.makedirs(nginx_dir)
    with open(os.path.join(HERE, "seed-stack", "nginx.conf.in")) as f:
        conf = f.read()
    conf = (conf.replace("@WORK@", nginx_dir).replace("@PORT@", str(nginx_port))
            .replace("@UPSTREAMS@", "\n".join(f"    server 127.0.0.1:{p};" for p in seed_ports)))
    conf_path = os.path.join(nginx_dir, "nginx.conf")
    with open(conf_path, "w") as f:
        f.write(conf)
    seed.append(procs.start("seed-nginx", [args.nginx, "-c", conf_path, "-g", "daemon off;"], port=nginx_port))

    check_answers("userkey-lb", lb_port)
    check_answers("seed nginx", nginx_port)
    contenders = [("userkey", lb_port, [p.pid for p in uk] + [db_pid]),
                  ("seed", nginx_port, [p.pid for p in seed] + [db_pid])]
    points = measure(contenders, args.stack_conns, args, "stack")
    procs.stop(uk + seed)
    return {
        "conns": args.stack_conns,
        "points": points,
        "cpu_includes": "the stack's processes (children included) and FerretDB",
        "commands": {
            "userkey-backend": " ".join(uk[0].bench_argv).replace(str(backend_ports[0]), "PORT"),
            "userkey-lb": " ".join(lb_argv),
            "uwsgi": " ".join(seed[0].bench_argv).replace(str(seed_ports[0]), "PORT"),
            "nginx": f"{args.nginx} -c nginx.conf -g 'daemon off;'",
        },
        "nginx_conf": conf,
        "uwsgi_ini": open(ini).read(),
    }


def build_httplib_constant(work):
    out = os.path.join(work, "httplib-constant")
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "cpp-httplib"], capture_output=True, text=True)
    argv = ["g++", "-O2", "-std=c++17", os.path.join(HERE, "httplib-constant.cpp"), "-o", out, "-pthread"]
    argv += flags.stdout.split() if flags.returncode == 0 else []
    subprocess.run(argv, check=True)
    return out, " ".join(argv).replace(work, "$WORK")


def part_backend(procs, args, uri, creds):
    bin_dir = args.bin
    httplib_bin, httplib_build = build_httplib_constant(procs.work)
    scenarios = [
        ("dump-log", "embedded dump, access log on", ["--dump", "dump"]),
        ("dump-nolog", "embedded dump, access log off", ["--dump", "dump", "--access-log", "false"]),
        ("mongo-cache-log", "MongoDB + cache (hits), access log on", ["--mongo-uri", uri]),
        ("mongo-cache-nolog", "MongoDB + cache (hits), access log off", ["--mongo-uri", uri, "--access-log", "false"]),
        ("mongo-nocache-log", "MongoDB, no cache, access log on", ["--mongo-uri", uri, "--cache-ttl", "0"]),
        ("mongo-nocache-nolog", "MongoDB, no cache, access log off",
         ["--mongo-uri", uri, "--cache-ttl", "0", "--access-log", "false"]),
    ]
    started, contenders, commands = [], [], {}
    for key, label, extra in scenarios:
        port = benchlib.free_port()
        argv = [f"{bin_dir}/userkey-backend", "--listen", f"127.0.0.1:{port}", "--name", key] + extra
        p = procs.start(key, argv, env=creds, port=port)
        check_answers(key, port)
        started.append(p)
        contenders.append((key, port, [p.pid]))
        commands[key] = " ".join(argv).replace(str(port), "PORT")
    port = benchlib.free_port()
    threads = str(max(256, 2 * max(args.backend_conns)))
    p = procs.start("httplib-constant", [httplib_bin, str(port), threads], port=port)
    started.append(p)
    contenders.append(("httplib-constant", port, [p.pid]))
    commands["httplib-constant"] = f"httplib-constant PORT {threads}  (built: {httplib_build})"
    points = measure(contenders, args.backend_conns, args, "scenario")
    procs.stop(started)
    labels = {k: label for k, label, _ in scenarios}
    labels["httplib-constant"] = "cpp-httplib, constant body (yardstick)"
    return {"conns": args.backend_conns, "points": points, "labels": labels, "commands": commands}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("USERKEY_BIN", "build/apps"))
    ap.add_argument("--json", required=True)
    ap.add_argument("--duration", default="5s")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=1.0)
    ap.add_argument("--stack-conns", default="16 64 256")
    ap.add_argument("--backend-conns", default="64")
    ap.add_argument("--parts", default="stack,backend")
    ap.add_argument("--ferretdb", default=shutil.which("ferretdb") or "/usr/local/bin/ferretdb")
    ap.add_argument("--uwsgi", default=shutil.which("uwsgi") or "/usr/bin/uwsgi")
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (logs)")
    args = ap.parse_args()
    args.bin = os.path.abspath(os.path.join(REPO, args.bin)) if not os.path.isabs(args.bin) else args.bin
    args.stack_conns = [int(c) for c in args.stack_conns.split()]
    args.backend_conns = [int(c) for c in args.backend_conns.split()]
    parts = set(args.parts.split(","))

    work = tempfile.mkdtemp(prefix="userkey-bench-stack-")
    procs = Processes(work)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        db, db_port, db_argv = start_ferretdb(procs, work, args.ferretdb)
        uri = f"mongodb://127.0.0.1:{db_port}/"
        creds = {"mongo_user": MONGO_USER, "mongo_pass": MONGO_PASS}
        seed = subprocess.run([f"{args.bin}/userkey-admin", "--mongo-uri", uri, "restore", "dump"], cwd=REPO,
                              env=dict(os.environ, **creds), capture_output=True, text=True)
        if seed.returncode != 0:
            sys.exit(f"stack.py: userkey-admin restore failed: {seed.stdout}{seed.stderr}")
        result = {
            "ferretdb": {"version": version([args.ferretdb, "--version"]),
                         "command": " ".join(db_argv).replace(work, "$WORK").replace(str(db_port), "PORT"),
                         "handler": "sqlite", "users": 7,
                         "seeded_by": "userkey-admin --mongo-uri URI restore dump"},
            "settings": {"duration": args.duration, "rounds": args.rounds, "settle": args.settle,
                         "wrk": "wrk -t2 -cCONNS -dDURATION --timeout 5s --latency -s bench/users.lua URL"},
        }
        if "stack" in parts:
            result["stack"] = part_stack(procs, args, uri, creds, db.pid)
        if "backend" in parts:
            result["backend"] = part_backend(procs, args, uri, creds)
        benchlib.write_json(args.json, result)
        print(f"results: {args.json}", file=sys.stderr)
    finally:
        procs.stop_all()
        if args.keep:
            print(f"logs in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
