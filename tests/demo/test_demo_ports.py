#!/usr/bin/env python3
"""scripts/demo.sh (what `make demo` runs) on kernel-chosen ports (label demo):

1. a taken port (the lb's, then also a backend's) is named with the variable
   that moves it, exit status 3, by --check-ports and by a real start, which
   then starts nothing;
2. bad port settings (a port twice, admin ports missing) exit 2;
3. a backend that exits at start is reported with its log, exit status 1;
4. on free ports the demo serves /?user_id=1 through the lb and each
   backend's /metrics on its admin port; SIGINT to its process group (what
   Ctrl-C sends) stops everything with exit status 0.

  tests/demo/test_demo_ports.py SOURCE_DIR BIN_DIR
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

SOURCE_DIR, BIN_DIR = sys.argv[1], sys.argv[2]
DEMO = os.path.join(SOURCE_DIR, "scripts", "demo.sh")


def free_ports(n):
    """n distinct ports the kernel calls free right now."""
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def listener(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(1)
    return s


def demo_env(ports, state, bin_dir=BIN_DIR):
    env = dict(os.environ)
    env.update({
        "USERKEY_BIN": bin_dir,
        "USERKEY_DEMO_STATE": state,
        "USERKEY_DEMO_BACKEND_PORTS": " ".join(map(str, ports[0:3])),
        "USERKEY_DEMO_BACKEND_ADMIN_PORTS": " ".join(map(str, ports[3:6])),
        "USERKEY_DEMO_LB_PORT": str(ports[6]),
        "USERKEY_DEMO_LB_ADMIN_PORT": str(ports[7]),
    })
    return env


def run(args, env, timeout=30):
    return subprocess.run([DEMO, *args], env=env, capture_output=True, text=True, timeout=timeout)


def expect(cond, what, result=None):
    if not cond:
        if result is not None:
            print("stdout:", result.stdout, "\nstderr:", result.stderr, file=sys.stderr)
        sys.exit(f"FAIL: {what}")
    print("ok  ", what)


def get(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return r.status, r.read().decode()


def main():
    work = tempfile.mkdtemp(prefix="demo-test-")
    ports = free_ports(8)
    env = demo_env(ports, os.path.join(work, "state"))
    lb_port, backend2 = ports[6], ports[1]

    # 1. taken ports
    with listener(lb_port):
        r = run(["--check-ports", "embedded"], env)
        expect(r.returncode == 3, "--check-ports: a taken lb port exits 3", r)
        expect(f"port {lb_port} (lb) is taken" in r.stderr and "USERKEY_DEMO_LB_PORT sets another" in r.stderr,
               "--check-ports names the lb port and its variable", r)
        with listener(backend2):
            r = run(["embedded"], env)
            expect(r.returncode == 3, "start: taken ports exit 3", r)
            expect(f"port {backend2} (backend-2) is taken" in r.stderr
                   and "USERKEY_DEMO_BACKEND_PORTS sets another" in r.stderr
                   and f"port {lb_port} (lb) is taken" in r.stderr, "start names both taken ports", r)
            expect(not os.path.exists(os.path.join(work, "state")), "start with taken ports started nothing")

    # 2. bad settings
    r = run(["--check-ports", "embedded"], {**env, "USERKEY_DEMO_LB_ADMIN_PORT": str(lb_port)})
    expect(r.returncode == 2 and "given twice" in r.stderr, "a port given twice exits 2", r)
    r = run(["--check-ports", "embedded"], {**env, "USERKEY_DEMO_BACKEND_ADMIN_PORTS": str(ports[3])})
    expect(r.returncode == 2 and "one port per backend" in r.stderr, "too few backend admin ports exit 2", r)

    # 3. a backend that cannot start
    fake_bin = os.path.join(work, "fake-bin")
    os.mkdir(fake_bin)
    with open(os.path.join(fake_bin, "userkey-backend"), "w") as f:
        f.write("#!/bin/sh\necho 'fake backend: cannot start' >&2\nexit 1\n")
    os.chmod(os.path.join(fake_bin, "userkey-backend"), 0o755)
    r = run(["embedded"], demo_env(ports, os.path.join(work, "state-fake"), fake_bin))
    expect(r.returncode == 1 and "backend-1 exited before listening" in r.stderr
           and "fake backend: cannot start" in r.stderr, "a backend that exits at start: its log, exit 1", r)

    # 4. the demo for real
    proc = subprocess.Popen([DEMO, "embedded"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        expect(lines and "Ctrl-C stops everything" in lines[-1], "the demo starts: " + "".join(lines).strip())
        expect(f"http://127.0.0.1:{lb_port}/" in "".join(lines), "it prints the lb's URL on the chosen port")
        status, body = get(f"http://127.0.0.1:{lb_port}/?user_id=1")
        answer = json.loads(body)
        expect(status == 200 and answer["user_key"] == "one@5cdb5896d7c8" and answer["port"] in ports[0:3],
               f"through the lb: {body}")
        for admin in ports[3:6]:
            status, body = get(f"http://127.0.0.1:{admin}/metrics")
            expect(status == 200 and "userkey_" in body, f"backend /metrics on {admin}")
        status, _ = get(f"http://127.0.0.1:{ports[7]}/status")
        expect(status == 200, "lb /status on its admin port")
        os.killpg(proc.pid, signal.SIGINT)
        rc = proc.wait(timeout=20)
        rest = proc.stdout.read()
        expect(rc == 0 and "demo stopped" in rest, f"Ctrl-C (SIGINT to the group) stops it with 0 (got {rc})")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for p in ports:
        with socket.socket() as s:
            expect(s.connect_ex(("127.0.0.1", p)) != 0, f"nothing listens on {p} afterwards")
    subprocess.run(["rm", "-rf", work], check=False)
    print("demo ports: ok")


if __name__ == "__main__":
    main()
