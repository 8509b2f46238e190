#!/usr/bin/env python3
"""The docker-compose demo, run for real: docker/compose.yaml with
docker/compose.podman.yaml under podman, driven by docker-compose 1.29 through
podman's Docker-compatible API (docker/podman/compose.sh), checked the way a
user would check it:

  1. `up -d --build` builds the image and every service becomes healthy; the
     image runs as non-root and holds no compiler or -dev package;
  2. /?user_id=1 through the lb's published port answers from backend-1, -2,
     -3 in turn;
  3. `userkey-admin put` run in a container (compose exec) adds a user the lb
     serves;
  4. stopping one backend container loses no request of a running loop;
  5. stopping the database gives 503s within a second, starting it again
     recovers without restarting anything else;
  6. `down --volumes` leaves no container, network or volume behind.

Ports are free ones on 127.0.0.1 and the compose project name is unique
(userkey-ctest-PID), so a running demo is never touched. Whatever happens,
the project is taken down and its containers, network and volume removed
(leftovers of a run that was killed are removed by the next run). Kept on
purpose, to make later runs fast: the image this test tags
(localhost/userkey:compose-test) and podman's build cache.

  test_compose_real.py --source-dir DIR [--budget SECONDS]

Needs root, podman, docker-compose, localhost/debian:12-local and the two
local images (scripts/install-containers.sh and docker/podman/build-images.sh;
`make test` runs both).
"""
from __future__ import annotations

import argparse
import ctypes
import http.client
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

PROJECT_PREFIX = "userkey-ctest-"
TEST_IMAGE = "localhost/userkey:compose-test"
LOCAL_IMAGES = ("localhost/debian:12-local", "localhost/userkey-ferretdb:1.24.2",
                "localhost/userkey-mongo-express:1.0.0")
SERVICES = ("mongo", "mongo-express", "backend-1", "backend-2", "backend-3", "lb")
BACKENDS = ("backend-1", "backend-2", "backend-3")
USER_1_KEY = "one@5cdb5896d7c8"  # dump/: user 1

T0 = time.monotonic()


class Failure(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


def _die_with_parent() -> None:
    """In a child: SIGTERM when this test process dies (even by SIGKILL)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setsid()


class Deadline:
    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def cap(self, seconds: float) -> float:
        left = self.left()
        if left <= 0:
            raise Failure("the test's time budget is used up")
        return min(seconds, left)


def run(argv, *, env=None, timeout=60.0, check=True, quiet=False) -> subprocess.CompletedProcess:
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        raise Failure(f"`{' '.join(argv)}` did not finish in {timeout:.0f}s\n{(e.stdout or '')}{(e.stderr or '')}")
    if check and p.returncode != 0:
        raise Failure(f"`{' '.join(argv)}` exited {p.returncode}:\n{p.stdout}{p.stderr}")
    if not quiet and p.returncode != 0:
        log(f"(`{' '.join(argv[:3])} …` exited {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]})")
    return p


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, target: str, timeout: float = 3.0):
    """(status, headers, json body or text) of one GET on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", target, headers={"Accept": "application/json"})
        r = conn.getresponse()
        body = r.read().decode(errors="replace")
        try:
            data = json.loads(body)
        except ValueError:
            data = body
        return r.status, dict(r.getheaders()), data
    finally:
        conn.close()


# --------------------------------------------------------------------------

class ComposeRun:
    def __init__(self, source_dir: str, budget: float):
        self.src = os.path.abspath(source_dir)
        self.deadline = Deadline(budget)
        self.project = f"{PROJECT_PREFIX}{os.getpid()}"
        self.tmp = tempfile.mkdtemp(prefix="userkey-compose-test.")
        self.socket = os.path.join(self.tmp, "podman.sock")
        self.children: list[subprocess.Popen] = []
        self.down_done = False
        self.http_port = free_port()
        self.admin_port = free_port()
        self.me_port = free_port()
        self.figures: dict[str, str] = {}
        self.env = self._env()

    # ---- environment, tools ----------------------------------------------

    def _env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not re.match(r"^(USERKEY_|mongo_|MONGO_|ME_|COMPOSE_|DOCKER_)", k)}
        extra = os.path.join(self.tmp, "test-override.yaml")
        with open(extra, "w") as f:
            f.write("# The image this test builds gets a tag of its own (a demo's userkey:local stays).\n"
                    "services:\n" + "".join(f"  {s}:\n    image: {TEST_IMAGE}\n" for s in (*BACKENDS, "lb")))
        env.update({
            "DOCKER_HOST": f"unix://{self.socket}",
            "COMPOSE_PROJECT_NAME": self.project,
            "USERKEY_COMPOSE_EXTRA": extra,
            "USERKEY_HTTP_PUBLISH": f"127.0.0.1:{self.http_port}",
            "USERKEY_ADMIN_PORT": str(self.admin_port),
            "USERKEY_ME_PORT": str(self.me_port),
            "mongo_user": "userkey",
            "mongo_pass": secrets.token_urlsafe(12),
            "MONGO_INITDB_ROOT_PASSWORD": secrets.token_urlsafe(12),
            "ME_PASS": secrets.token_urlsafe(12),
            "COMPOSE_HTTP_TIMEOUT": "300",
            "TMPDIR": self.tmp,
        })
        return env

    def compose(self, *args, timeout=120.0, check=True, quiet=False) -> subprocess.CompletedProcess:
        return run([os.path.join(self.src, "docker/podman/compose.sh"), *args], env=self.env,
                   timeout=self.deadline.cap(timeout), check=check, quiet=quiet)

    def podman(self, *args, timeout=60.0, check=True, quiet=False) -> subprocess.CompletedProcess:
        return run(["podman", *args], timeout=self.deadline.cap(timeout), check=check, quiet=quiet)

    def preflight(self) -> None:
        for tool in ("podman", "docker-compose"):
            if shutil.which(tool) is None:
                raise Failure(f"{tool} is missing: run scripts/install-containers.sh (make test does)")
        missing = [i for i in LOCAL_IMAGES if run(["podman", "image", "exists", i], check=False).returncode != 0]
        if missing:
            raise Failure(f"missing local images {', '.join(missing)}: run scripts/install-containers.sh and "
                          "docker/podman/build-images.sh (make test runs both)")

    def sweep_leftovers(self) -> None:
        """Projects of earlier runs whose test process is gone (killed by a timeout)."""
        out = run(["podman", "ps", "-a", "--filter", "label=com.docker.compose.project",
                   "--format", '{{index .Labels "com.docker.compose.project"}}'], check=False).stdout
        names = {n for n in out.split() if n.startswith(PROJECT_PREFIX)}
        out = run(["podman", "volume", "ls", "--format", "{{.Name}}"], check=False).stdout
        names |= {v.split("_")[0] for v in out.split() if v.startswith(PROJECT_PREFIX)}
        out = run(["podman", "network", "ls", "--format", "{{.Name}}"], check=False).stdout
        names |= {v.split("_")[0] for v in out.split() if v.startswith(PROJECT_PREFIX)}
        for name in sorted(names):
            pid = name[len(PROJECT_PREFIX):]
            if pid.isdigit() and int(pid) != os.getpid() and not os.path.exists(f"/proc/{pid}"):
                log(f"removing {name}, left over by a run that did not finish")
                self.remove_project(name)

    def remove_project(self, name: str) -> None:
        ids = run(["podman", "ps", "-aq", "--filter", f"label=com.docker.compose.project={name}"],
                  check=False).stdout.split()
        if ids:
            run(["podman", "rm", "-f", "-t", "0", *ids], check=False, timeout=120)
        for net in run(["podman", "network", "ls", "--format", "{{.Name}}"], check=False).stdout.split():
            if net.startswith(name + "_"):
                run(["podman", "network", "rm", "-f", net], check=False)
        for vol in run(["podman", "volume", "ls", "--format", "{{.Name}}"], check=False).stdout.split():
            if vol.startswith(name + "_"):
                run(["podman", "volume", "rm", "-f", vol], check=False)

    def start_helpers(self) -> None:
        svc = subprocess.Popen(["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, "service.log"), "w"),
                               preexec_fn=_die_with_parent)
        self.children.append(svc)
        end = time.monotonic() + 30
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.connect(self.socket)
                break
            except OSError:
                if svc.poll() is not None or time.monotonic() > end:
                    raise Failure("podman system service did not open its socket: "
                                  + open(os.path.join(self.tmp, "service.log")).read()[-500:])
                time.sleep(0.2)
        # No systemd here to run podman's health-check timers: this loop does.
        hc = subprocess.Popen([os.path.join(self.src, "docker/podman/healthchecks.sh"), self.project],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        self.children.append(hc)

    # ---- container facts ---------------------------------------------------

    def container(self, service: str) -> dict:
        ids = self.podman("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}",
                          "--filter", f"label=com.docker.compose.service={service}").stdout.split()
        if not ids:
            raise Failure(f"no container for service {service}")
        return json.loads(self.podman("inspect", ids[0]).stdout)[0]

    @staticmethod
    def health(info: dict) -> str:
        state = info.get("State", {})
        h = state.get("Health") or state.get("Healthcheck") or {}
        return h.get("Status") or "none"

    def diagnose(self) -> str:
        lines = []
        p = self.compose("ps", check=False, timeout=60)
        lines.append(p.stdout + p.stderr)
        for s in SERVICES:
            p = self.compose("logs", "--no-color", "--tail", "15", s, check=False, timeout=60)
            lines.append(f"--- logs of {s} (last 15 lines)\n{p.stdout.strip()}")
        return "\n".join(lines)

    # ---- the checks --------------------------------------------------------

    def up(self) -> None:
        t = time.monotonic()
        p = self.compose("up", "-d", "--build", timeout=900, check=False)
        self.figures["up --build"] = f"{time.monotonic() - t:.0f}s"
        if p.returncode != 0:
            raise Failure(f"`compose.sh up -d --build` exited {p.returncode}:\n{p.stderr[-3000:]}\n{self.diagnose()}")
        log(f"up -d --build: {self.figures['up --build']}")
        end = time.monotonic() + self.deadline.cap(120)
        while True:
            states = {s: self.health(self.container(s)) for s in SERVICES}
            if all(v == "healthy" for v in states.values()):
                break
            if time.monotonic() > end or any(v == "unhealthy" for v in states.values()):
                raise Failure(f"not every service became healthy: {states}\n{self.diagnose()}")
            time.sleep(1)
        log(f"every service is healthy: {', '.join(SERVICES)}")

    def check_image(self) -> None:
        info = json.loads(self.podman("image", "inspect", TEST_IMAGE).stdout)[0]
        user = info.get("Config", {}).get("User", "")
        size_mb = info.get("Size", 0) / 1e6
        self.figures["image size"] = f"{size_mb:.0f} MB"
        if user.split(":")[0] in ("", "0", "root"):
            raise Failure(f"the image runs as {user or 'root'}, not a non-root user")
        pkgs = self.podman("run", "--rm", "--entrypoint", "dpkg-query", TEST_IMAGE, "-W", "-f", "${Package}\\n",
                           timeout=120).stdout.split()
        build_tools = sorted(p for p in pkgs if p.endswith("-dev") or
                             re.fullmatch(r"(g\+\+|gcc|cpp|cmake|ninja-build|make|binutils)(-\d+)?", p))
        if build_tools:
            raise Failure(f"the runtime image holds build packages: {', '.join(build_tools)}")
        for s in (*BACKENDS, "lb"):
            u = self.container(s)["Config"].get("User", "")
            if u.split(":")[0] in ("", "0", "root"):
                raise Failure(f"{s} runs as {u or 'root'}")
        log(f"image {TEST_IMAGE}: {size_mb:.0f} MB, user {user}, {len(pkgs)} packages, no compiler or -dev package")

    def check_round_robin(self) -> None:
        seen = []
        for _ in range(6):
            status, _, body = http_get(self.http_port, "/?user_id=1")
            if status != 200 or not isinstance(body, dict) or body.get("user_key") != USER_1_KEY:
                raise Failure(f"GET /?user_id=1 through the lb: {status} {body}")
            seen.append(body.get("backend"))
        if sorted(seen[:3]) != list(BACKENDS) or seen[3:] != seen[:3]:
            raise Failure(f"/?user_id=1 six times through the lb was answered by {seen}, "
                          "not backend-1, -2 and -3 in turn")
        log(f"/?user_id=1 through 127.0.0.1:{self.http_port}: answered in turn by {' '.join(seen)}")

    def check_admin_put(self) -> None:
        user_id, key = "4242", f"compose-{secrets.token_hex(4)}"
        # exec, as docs/operations.md says: `run` cannot work here, docker-compose
        # 1.29 links a one-off container to its service and podman has no links.
        # A new connection's login can take a while on this shared 2-core
        # machine: a longer --mongo-timeout than the 2 s default, and a second
        # try as a person would (both are logged).
        for attempt in (1, 2, 3):
            p = self.compose("exec", "-T", "backend-1", "userkey-admin", "--mongo-timeout", "10s", "put", user_id, key,
                             timeout=120, check=False, quiet=True)
            if p.returncode == 0:
                break
            log(f"userkey-admin put, try {attempt}: exited {p.returncode}: {(p.stderr or p.stdout).strip()[-300:]}")
            if attempt == 3:
                raise Failure(f"`compose.sh exec -T backend-1 userkey-admin put {user_id} …` failed 3 times:\n"
                              f"{p.stdout}{p.stderr}\n{self.diagnose()}")
            time.sleep(2)
        served = set()
        for _ in range(3):
            status, _, body = http_get(self.http_port, f"/?user_id={user_id}")
            if status != 200 or body.get("user_key") != key:
                raise Failure(f"after `userkey-admin put {user_id} {key}`, the lb answered {status} {body}")
            served.add(body.get("backend"))
        log(f"userkey-admin put {user_id} (exec in backend-1's container): the lb serves it from {', '.join(sorted(served))}")

    def check_backend_stop(self) -> None:
        results: list = []
        stop = threading.Event()

        def loop():  # sequential GETs, a few milliseconds apart, for about 5 s
            while not stop.is_set() and len(results) < 5000:
                try:
                    status, _, body = http_get(self.http_port, "/?user_id=1", timeout=5)
                    results.append((time.monotonic(), status, body.get("backend") if isinstance(body, dict) else None))
                except (OSError, http.client.HTTPException) as e:
                    results.append((time.monotonic(), f"error: {e}", None))
                time.sleep(0.003)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        try:
            time.sleep(1.5)
            t_stop = time.monotonic()
            self.compose("stop", "backend-2", timeout=60)
            t_stopped = time.monotonic()
            time.sleep(3)
        finally:
            stop.set()
            thread.join(10)
        bad = [(round(t - t_stop, 2), s) for t, s, _ in results if s != 200]
        after = {b for t, s, b in results if t > t_stopped + 0.5 and s == 200}
        if bad:
            raise Failure(f"{len(bad)} of {len(results)} requests failed while backend-2 stopped: {bad[:10]}")
        if len(results) < 20:
            raise Failure(f"the request loop made only {len(results)} requests")
        if "backend-2" in after:
            raise Failure("backend-2 still answered after its container stopped")
        log(f"stop backend-2 ({t_stopped - t_stop:.1f}s) under a request loop: {len(results)} requests, "
            f"0 lost; then answered by {', '.join(sorted(after))}")
        self.compose("start", "backend-2", timeout=60)
        end = time.monotonic() + self.deadline.cap(60)
        while True:
            status, _, body = http_get(self.http_port, "/?user_id=1")
            if status == 200 and body.get("backend") == "backend-2":
                break
            if time.monotonic() > end:
                raise Failure("backend-2 did not come back into the lb's rotation within 60s of its start")
            time.sleep(0.3)
        log("backend-2 started again and is back in rotation")

    def started(self) -> dict:
        return {s: (c["State"].get("StartedAt"), c.get("RestartCount", 0))
                for s in (*BACKENDS, "lb") for c in [self.container(s)]}

    def check_database_stop(self) -> None:
        before = self.started()
        t = time.monotonic()
        self.compose("stop", "mongo", timeout=60)
        t_stopped = time.monotonic()
        # Ids never asked for yet (found keys are cached for 30 s): each must
        # reach the database, which is gone.
        first_503, answers = None, []
        for user_id in (2, 3, 4, 5, 6, 7):
            status, headers, body = http_get(self.http_port, f"/?user_id={user_id}", timeout=5)
            answers.append((user_id, status, body.get("backend") if isinstance(body, dict) else body))
            if status == 503 and first_503 is None:
                first_503 = time.monotonic() - t_stopped
                if headers.get("Retry-After") != "1":
                    raise Failure(f"503 without Retry-After: 1: {headers}")
        if first_503 is None or first_503 > 1.0 or any(s != 503 for _, s, _ in answers):
            raise Failure(f"with the database stopped ({t_stopped - t:.1f}s to stop), expected 503 within 1s "
                          f"for every uncached id; got {answers}")
        backends_503 = sorted({b for _, _, b in answers})
        self.figures["first 503 after stop"] = f"{first_503 * 1000:.0f} ms"
        log(f"database stopped ({t_stopped - t:.1f}s): 503 + Retry-After: 1 after {first_503 * 1000:.0f} ms, "
            f"from {', '.join(backends_503)}")

        t_start = time.monotonic()
        self.compose("start", "mongo", timeout=60)
        end = time.monotonic() + self.deadline.cap(90)
        ok = set()
        while len(ok) < 3:
            for user_id in (2, 3, 4):
                status, _, body = http_get(self.http_port, f"/?user_id={user_id}", timeout=5)
                if status == 200:
                    ok.add(body.get("backend"))
            if time.monotonic() > end:
                raise Failure(f"90s after the database started again only {sorted(ok)} answered 200\n{self.diagnose()}")
            if len(ok) < 3:
                time.sleep(0.5)
        recovered = time.monotonic() - t_start
        self.figures["recovery after database start"] = f"{recovered:.1f}s"
        after = self.started()
        restarted = [s for s in before if before[s] != after[s]]
        if restarted:
            raise Failure(f"containers restarted while the database was away: {restarted} ({before} -> {after})")
        log(f"database started again: every backend answers 200 after {recovered:.1f}s; "
            "backends and lb were not restarted")

    def check_down(self) -> None:
        self.compose("down", "--volumes", "--remove-orphans", timeout=180)
        self.down_done = True
        containers = self.podman("ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}").stdout.split()
        networks = [n for n in self.podman("network", "ls", "--format", "{{.Name}}").stdout.split()
                    if n.startswith(self.project + "_")]
        volumes = [v for v in self.podman("volume", "ls", "--format", "{{.Name}}").stdout.split()
                   if v.startswith(self.project + "_")]
        if containers or networks or volumes:
            raise Failure(f"`down --volumes` left containers {containers}, networks {networks}, volumes {volumes}")
        log("down --volumes: no container, network or volume of the project is left")

    # ---- driver ------------------------------------------------------------

    def cleanup(self) -> None:
        try:
            if not self.down_done:
                log("cleaning up: compose down --volumes")
                try:
                    run([os.path.join(self.src, "docker/podman/compose.sh"), "down", "--volumes", "--remove-orphans",
                         "-t", "5"], env=self.env, timeout=120, check=False)
                except Failure as e:
                    log(str(e))
            self.remove_project(self.project)
        finally:
            for child in reversed(self.children):
                if child.poll() is None:
                    child.terminate()
                    try:
                        child.wait(10)
                    except subprocess.TimeoutExpired:
                        child.kill()
                        child.wait()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def main(self) -> int:
        steps = [("up", self.up), ("image", self.check_image), ("round robin", self.check_round_robin),
                 ("admin put", self.check_admin_put), ("backend stop", self.check_backend_stop),
                 ("database stop", self.check_database_stop), ("down", self.check_down)]
        passed = 0
        try:
            self.preflight()
            self.sweep_leftovers()
            log(f"project {self.project}: lb on 127.0.0.1:{self.http_port}, admin 127.0.0.1:{self.admin_port}, "
                f"mongo-express 127.0.0.1:{self.me_port}")
            self.start_helpers()
            for name, step in steps:
                step()
                passed += 1
                print(f"PASS {name}", flush=True)
        except Failure as e:
            print(f"FAIL {steps[passed][0]}: {e}", flush=True)
        finally:
            self.cleanup()
        total = time.monotonic() - T0
        print("figures: " + ", ".join(f"{k} {v}" for k, v in self.figures.items()) + f", total {total:.0f}s")
        print(f"{passed} passed, {len(steps) - passed} failed")
        return 0 if passed == len(steps) else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--budget", type=float, default=840, help="seconds before the test gives up and cleans up")
    args = ap.parse_args()

    def on_signal(signum, _frame):
        raise Failure(f"stopped by signal {signum}")

    if os.geteuid() != 0:
        print("SKIP: needs root (rootful podman, as in CI); `sudo make test` runs it")
        return 77
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return ComposeRun(args.source_dir, args.budget).main()


if __name__ == "__main__":
    sys.exit(main())
