#!/usr/bin/env python3
"""Static checks of the container files against the real apps.

No container engine is needed: docker/compose.yaml, docker/Dockerfile and
docker/k8s.yaml (and an image override such as docker/compose.podman.yaml) are read as data and compared with what the built binaries
accept, as printed by their own --help (option flags, "(Env:NAME)" entries,
defaults, "Excludes:" pairs, subcommands), and with CMakePresets.json.

  check_compose.py --compose docker/compose.yaml --bin-dir build/apps \\
      --dockerfile docker/Dockerfile --presets CMakePresets.json [--k8s docker/k8s.yaml] \\
      [--override docker/compose.podman.yaml]
  check_compose.py --self-test --bin-dir build/apps

Prints one PASS/FAIL line per check and exits 1 when any check fails.
--self-test feeds deliberately broken snippets and asserts each is caught.
Needs Python 3 and PyYAML (Debian: python3-yaml).
"""
from __future__ import annotations

import argparse
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

try:
    import yaml
except ImportError:  # pragma: no cover - environment problem, reported plainly
    print("FAIL setup: PyYAML is not importable (Debian package python3-yaml)")
    sys.exit(1)

APPS = ("userkey-backend", "userkey-lb", "userkey-admin")
CI_PRESET = "default"  # what .ci/run (make test) configures with
# Cache variables the image preset may set differently from CI's.
# The image builds Release without tests; its Release flags are set to -O2 (CI's
# RelWithDebInfo is -O2 -g): GCC 12 at -O3 raises false -Wrestrict and
# -Wmaybe-uninitialized errors under -Werror, and -O2 is what the tests run.
PRESET_VARS_ALLOWED_TO_DIFFER = {"USERKEY_BUILD_TESTS", "CMAKE_BUILD_TYPE", "CMAKE_CXX_FLAGS_RELEASE",
                                 "CMAKE_C_FLAGS_RELEASE"}
# Shared libraries every debian:12-slim image already has.
BASE_IMAGE_PACKAGES = {"libc6", "libstdc++6", "libgcc-s1"}
SECRET_NAME = re.compile(r"(?i)(^|_)(pass|passwd|password|secret|token|credentials?)$")
# ${NAME}, ${NAME:?message} or ${NAME?message}: a reference with no literal fallback.
PURE_REF = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?\?[^}]*)?\}$")
URI_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://([^/@\s:]*):([^/@\s]*)@", re.I)


# --------------------------------------------------------------------------
# Reporting

class Report:
    def __init__(self, quiet: bool = False):
        self.failures: list[str] = []
        self.quiet = quiet

    def ok(self, check: str, detail: str = "") -> None:
        if not self.quiet:
            print(f"PASS {check}" + (f": {detail}" if detail else ""))

    def fail(self, check: str, detail: str) -> None:
        self.failures.append(f"{check}: {detail}")
        if not self.quiet:
            print(f"FAIL {check}: {detail}")

    def note(self, check: str, detail: str) -> None:
        if not self.quiet:
            print(f"NOTE {check}: {detail}")

    def check(self, cond: bool, check: str, good: str, bad: str) -> bool:
        if cond:
            self.ok(check, good)
        else:
            self.fail(check, bad)
        return cond


# --------------------------------------------------------------------------
# What an app accepts, from its --help (CLI11 format)

@dataclass
class AppHelp:
    name: str
    text: str = ""
    flags: set = field(default_factory=set)
    value_flags: set = field(default_factory=set)  # flags that take a value
    env_of: dict = field(default_factory=dict)     # flag -> env name
    defaults: dict = field(default_factory=dict)   # flag -> default text
    excludes: dict = field(default_factory=dict)   # flag -> {flags}
    subcommands: dict = field(default_factory=dict)  # name -> AppHelp
    extra_env: set = field(default_factory=set)    # names read directly (mongo_user, ...)

    @property
    def envs(self) -> set:
        return set(self.env_of.values()) | self.extra_env

    def flag_of_env(self, env: str):
        for f, e in self.env_of.items():
            if e == env:
                return f
        return None


OPTION_LINE = re.compile(r"^  (-[\w-]+(?:,--?[\w-]+)*)(.*)$")


def parse_help(name: str, text: str) -> AppHelp:
    h = AppHelp(name=name, text=text)
    section = ""
    for line in text.splitlines():
        if re.match(r"^\S.*:\s*$", line):
            section = line.strip().rstrip(":")
            continue
        if section == "Subcommands":
            m = re.match(r"^  ([a-z][\w-]*)\s", line)
            if m:
                h.subcommands[m.group(1)] = None
            continue
        m = OPTION_LINE.match(line)
        if not m:
            continue
        names = [n for n in m.group(1).split(",") if n.startswith("-")]
        rest = m.group(2)
        long = next((n for n in names if n.startswith("--")), names[0])
        h.flags.update(names)
        if re.match(r"^ [A-Z]+(?:[:=\s]|$)", rest):
            h.value_flags.update(names)
        d = re.match(r"^ [A-Z]+(?::[^=\s]*(?: [^=\s(]*)*)?=(\S+)", rest)
        if d:
            h.defaults[long] = d.group(1)
        e = re.search(r"\(Env:(\w+)\)", rest)
        if e:
            h.env_of[long] = e.group(1)
        x = re.search(r"Excludes:((?: --[\w-]+)+)", rest)
        if x:
            h.excludes[long] = set(x.group(1).split())
    # Names the apps read straight from the environment (documented in help).
    h.extra_env = set(re.findall(r"\b(mongo_user|mongo_pass)\b", text))
    return h


def load_apps(bin_dir: str, report: Report) -> dict:
    apps = {}
    for app in APPS:
        path = os.path.join(bin_dir, app)
        if not os.access(path, os.X_OK):
            report.fail("apps", f"{path} is missing or not executable (build the apps first)")
            continue
        text = run_help([path])
        if text is None:
            report.fail("apps", f"{path} --help failed")
            continue
        h = parse_help(app, text)
        for sub in list(h.subcommands):
            st = run_help([path, sub])
            h.subcommands[sub] = parse_help(f"{app} {sub}", st or "")
        apps[app] = h
        report.ok(f"apps/{app}", f"--help lists {len(h.flags)} flags, {len(h.envs)} environment names"
                  + (f", subcommands {', '.join(sorted(h.subcommands))}" if h.subcommands else ""))
    return apps


def run_help(argv: list) -> str | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("USERKEY_") and k not in ("mongo_user", "mongo_pass")}
    try:
        p = subprocess.run(argv + ["--help"], capture_output=True, text=True, timeout=20, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return p.stdout if p.returncode == 0 else None


# --------------------------------------------------------------------------
# Dockerfile

@dataclass
class Stage:
    name: str
    base: str
    instructions: list = field(default_factory=list)  # (KEYWORD, args)


@dataclass
class DockerfileInfo:
    stages: list
    global_args: dict

    @property
    def runtime(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str):
        for i, s in enumerate(self.stages):
            if s.name == name or str(i) == name:
                return s
        return None

    def runs(self, stage: Stage) -> list:
        return [a for k, a in stage.instructions if k == "RUN"]

    def apt_packages(self, stage: Stage) -> set:
        pkgs = set()
        for run in self.runs(stage):
            for m in re.finditer(r"apt-get\s+install\b(.*?)(?:&&|;|\|\||$)", run):
                pkgs.update(t for t in m.group(1).split() if not t.startswith("-") and "=" not in t)
        return pkgs

    def env(self, stage: Stage) -> dict:
        out = {}
        for k, a in stage.instructions:
            if k == "ENV":
                for t in shlex.split(a):
                    if "=" in t:
                        n, v = t.split("=", 1)
                        out[n] = v
        return out

    def last(self, stage: Stage, keyword: str):
        vals = [a for k, a in stage.instructions if k == keyword]
        return vals[-1] if vals else None


def parse_dockerfile(text: str) -> DockerfileInfo:
    lines = [l for l in text.splitlines() if not l.lstrip().startswith("#")]
    logical, cur = [], ""
    for l in lines:
        if l.rstrip().endswith("\\"):
            cur += l.rstrip()[:-1] + " "
        else:
            cur += l
            if cur.strip():
                logical.append(cur.strip())
            cur = ""
    if cur.strip():
        logical.append(cur.strip())
    stages, global_args = [], {}
    for l in logical:
        kw, _, args = l.partition(" ")
        kw = kw.upper()
        args = args.strip()
        if kw == "FROM":
            toks = [t for t in args.split() if not t.startswith("--")]
            base = toks[0]
            name = toks[2] if len(toks) >= 3 and toks[1].lower() == "as" else str(len(stages))
            base = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: global_args.get(m.group(1) or m.group(2), m.group(0)), base)
            stages.append(Stage(name=name, base=base))
        elif not stages:
            if kw == "ARG":
                n, _, v = args.partition("=")
                global_args[n.strip()] = v.strip()
        else:
            stages[-1].instructions.append((kw, args))
    return DockerfileInfo(stages=stages, global_args=global_args)


def exec_form(args: str):
    try:
        v = json.loads(args)
        return v if isinstance(v, list) else None
    except ValueError:
        return shlex.split(args)


def resolve_preset(presets: dict, name: str):
    by_name = {p["name"]: p for p in presets.get("configurePresets", [])}
    if name not in by_name:
        return None
    p = dict(by_name[name])
    cache = {}
    parents = p.get("inherits", [])
    for parent in [parents] if isinstance(parents, str) else parents:
        pp = resolve_preset(presets, parent) or {}
        for k, v in pp.items():
            p.setdefault(k, v)
        cache.update(pp.get("cacheVariables", {}))
    cache.update(by_name[name].get("cacheVariables", {}))
    p["cacheVariables"] = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in cache.items()}
    return p


def is_off(v) -> bool:
    return str(v).upper() in ("OFF", "FALSE", "0", "NO", "N", "")


def check_dockerfile(df: DockerfileInfo, presets: dict, install_deps_text: str | None, apps: dict,
                     compose_binaries: set, bin_dir: str | None, report: Report) -> None:
    c = "dockerfile"
    if not report.check(len(df.stages) >= 2, f"{c}/stages", f"{len(df.stages)} stages: "
                        + ", ".join(f"{s.name} FROM {s.base}" for s in df.stages),
                        "expected a multi-stage build (build stage + runtime stage)"):
        return
    for s in df.stages:
        ok = bool(re.match(r"^debian:(12|bookworm)([.-]\S*)?$", s.base)) or df.stage(s.base) is not None
        report.check(ok, f"{c}/base", f"stage {s.name}: {s.base}", f"stage {s.name}: base {s.base} is not debian:12 / bookworm")

    # The build: cmake --preset X, cmake --build --preset Y, cmake --install DIR.
    build = next((s for s in df.stages if any(re.search(r"cmake\s+--preset\s", r) for r in df.runs(s))), None)
    if not report.check(build is not None, f"{c}/cmake", "a stage configures with cmake --preset",
                        "no `cmake --preset NAME` in any RUN"):
        return
    runs = " && ".join(df.runs(build))
    preset = re.search(r"cmake\s+--preset[= ](\S+)", runs).group(1)
    bpreset = re.search(r"cmake\s+--build\s+--preset[= ](\S+)", runs)
    install = re.search(r"cmake\s+--install\s+(\S+)", runs)
    ci = resolve_preset(presets, CI_PRESET)
    img = resolve_preset(presets, preset)
    if report.check(img is not None, f"{c}/preset", f"'{preset}' exists in CMakePresets.json",
                    f"preset '{preset}' is not a configurePreset in CMakePresets.json") and ci is not None:
        report.check(img.get("generator") == ci.get("generator"), f"{c}/preset-generator",
                     f"'{preset}' uses {img.get('generator')}, like CI's '{CI_PRESET}'",
                     f"'{preset}' generator {img.get('generator')!r} != CI's {ci.get('generator')!r}")
        a, b = img["cacheVariables"], ci["cacheVariables"]
        differ = sorted(k for k in set(a) | set(b) if k not in PRESET_VARS_ALLOWED_TO_DIFFER and a.get(k) != b.get(k))
        report.check(not differ, f"{c}/preset-cache", f"'{preset}' cacheVariables match '{CI_PRESET}' except "
                     + ", ".join(sorted(PRESET_VARS_ALLOWED_TO_DIFFER)),
                     f"'{preset}' differs from CI's '{CI_PRESET}' in " + ", ".join(
                         f"{k}={a.get(k)!r} vs {b.get(k)!r}" for k in differ))
        report.check(is_off(a.get("USERKEY_BUILD_TESTS", "OFF")), f"{c}/preset-tests",
                     f"'{preset}' builds no tests", f"'{preset}' sets USERKEY_BUILD_TESTS={a.get('USERKEY_BUILD_TESTS')}")
        if a.get("CMAKE_BUILD_TYPE") != b.get("CMAKE_BUILD_TYPE"):
            report.note(f"{c}/preset-build-type", f"image builds {a.get('CMAKE_BUILD_TYPE')}, CI builds "
                        f"{b.get('CMAKE_BUILD_TYPE')} (allowed)")
        if report.check(bpreset is not None, f"{c}/build-preset", "cmake --build --preset present",
                        "no `cmake --build --preset NAME`"):
            bp = next((p for p in presets.get("buildPresets", []) if p["name"] == bpreset.group(1)), None)
            report.check(bp is not None and bp.get("configurePreset") == preset, f"{c}/build-preset",
                         f"build preset '{bpreset.group(1)}' builds configure preset '{preset}'",
                         f"build preset '{bpreset.group(1)}' missing or not tied to '{preset}'")
        binary_dir = str(img.get("binaryDir", "")).replace("${sourceDir}/", "")
        report.check(install is not None and install.group(1).rstrip("/") == binary_dir, f"{c}/install",
                     f"cmake --install {binary_dir}",
                     f"`cmake --install DIR` must install the preset's binaryDir ({binary_dir})")
    elif ci is None:
        report.fail(f"{c}/preset", f"CI's preset '{CI_PRESET}' is missing from CMakePresets.json")

    if install_deps_text is not None:
        m = re.search(r"^packages=\(([^)]*)\)", install_deps_text, re.M)
        wanted = set(m.group(1).split()) if m else set()
        missing = sorted(wanted - df.apt_packages(build))
        report.check(m is not None and not missing, f"{c}/build-deps",
                     f"build stage installs the {len(wanted)} packages of scripts/install-deps.sh",
                     f"build stage lacks {', '.join(missing) or 'the packages=(...) list'} of scripts/install-deps.sh")

    rt = df.runtime
    report.check(rt is not build, f"{c}/runtime", f"runtime stage '{rt.name}' is separate from the build",
                 "the last stage is the build stage: compilers would ship in the image")
    copies = [a for k, a in rt.instructions if k == "COPY" and "--from=" in a]
    sources = " ".join(" ".join(a.split()[:-1]) for a in copies)
    for app in sorted(compose_binaries):
        report.check(re.search(rf"/{re.escape(app)}(\s|$)", sources) is not None, f"{c}/runtime-copies",
                     f"runtime stage copies {app}", f"runtime stage does not COPY --from the build stage {app}")
    report.check("share/userkey/dump" in sources, f"{c}/runtime-copies", "runtime stage copies the dump",
                 "runtime stage does not copy <prefix>/share/userkey/dump")
    user = df.last(rt, "USER")
    report.check(user is not None and user.split(":")[0] not in ("root", "0"), f"{c}/user",
                 f"runs as non-root USER {user}", "runtime stage must set a non-root USER")
    report.check(df.last(rt, "ENTRYPOINT") is None, f"{c}/entrypoint", "no ENTRYPOINT: the command names the app",
                 "ENTRYPOINT is set; the app must be chosen by the command")
    cmd = df.last(rt, "CMD")
    cmd_argv = exec_form(cmd) if cmd else None
    report.check(bool(cmd_argv) and os.path.basename(cmd_argv[0]) in APPS, f"{c}/cmd",
                 f"default command {cmd_argv}", f"CMD must run one of {', '.join(APPS)}, got {cmd}")
    all_envs = set().union(*(h.envs for h in apps.values())) if apps else set()
    for s in df.stages:
        for k, a in s.instructions:
            if k in ("ENV", "ARG"):
                for t in shlex.split(a):
                    n = t.split("=", 1)[0]
                    if SECRET_NAME.search(n) or n in ("mongo_pass",):
                        report.fail(f"{c}/secrets", f"stage {s.name} sets {k} {n}: secrets must come at run time")
    for n in sorted(df.env(rt)):
        if n.startswith("USERKEY_") and apps:
            report.check(n in all_envs, f"{c}/env", f"ENV {n} is read by an app",
                         f"ENV {n} is not an environment name any app accepts")
    # Runtime shared libraries: each binary's direct NEEDED libraries, mapped
    # to their Debian packages on this (Debian 12) build machine.
    pkgs = df.apt_packages(rt)
    needed = runtime_packages(bin_dir, compose_binaries) if bin_dir else None
    if needed is None:
        report.note(f"{c}/runtime-libs", "skipped (needs readelf, ldd and dpkg on the build machine)")
    else:
        missing = sorted(needed - pkgs - BASE_IMAGE_PACKAGES)
        report.check(not missing, f"{c}/runtime-libs", "runtime stage installs " + ", ".join(sorted(needed - BASE_IMAGE_PACKAGES)),
                     "runtime stage lacks " + ", ".join(missing))


def runtime_packages(bin_dir: str, binaries: set):
    if not all(shutil.which(t) for t in ("readelf", "ldd", "dpkg")):
        return None
    pkgs = set()
    for app in binaries:
        path = os.path.join(bin_dir, app)
        try:
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]",
                                subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout)
            ldd = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        except OSError:
            return None
        where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        for so in needed:
            if so.startswith("ld-linux"):
                continue  # the dynamic loader: libc6
            if so not in where:
                return None
            out = ""
            for candidate in (where[so], os.path.realpath(where[so])):
                r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
                if r.returncode == 0:
                    out = r.stdout
                    break
            if not out:
                return None
            pkgs.add(out.split(":")[0].strip())
    return pkgs


# --------------------------------------------------------------------------
# Environment, commands and secrets (shared by compose and k8s)

def env_dict(environment) -> dict:
    if environment is None:
        return {}
    if isinstance(environment, dict):
        return {str(k): ("" if v is None else str(v)) for k, v in environment.items()}
    out = {}
    for item in environment:
        n, _, v = str(item).partition("=")
        out[n] = v
    return out


def check_secret_value(where: str, name: str, value: str, report: Report, k8s: bool = False) -> bool:
    ok = True
    if SECRET_NAME.search(name):
        if k8s:
            report.fail(f"{where}/secrets", f"{name} has a literal value; use valueFrom.secretKeyRef")
            return False
        if not PURE_REF.match(value):
            report.fail(f"{where}/secrets", f"{name} must be a bare ${{NAME}} or ${{NAME:?message}} reference, "
                        f"not a literal or a default")
            ok = False
    for m in URI_CREDENTIALS.finditer(value):
        if not PURE_REF.match(m.group(2)) and not (k8s and re.fullmatch(r"\$\([A-Za-z_]\w*\)", m.group(2))):
            report.fail(f"{where}/secrets", f"{name}: the password in a URI must be a ${{...}} reference")
            ok = False
    return ok


def check_command(where: str, argv: list, apps: dict, report: Report):
    """Returns (AppHelp, {flag: value}) for a valid command, else (None, {})."""
    if not argv:
        report.fail(f"{where}/command", f"no command: it must name one of {', '.join(APPS)}")
        return None, {}
    app = os.path.basename(str(argv[0]))
    if app not in APPS:
        report.fail(f"{where}/command", f"'{argv[0]}' is not one of {', '.join(APPS)}")
        return None, {}
    h = apps.get(app)
    if h is None:
        report.fail(f"{where}/command", f"no --help of {app} to check against")
        return None, {}
    given, bad, cur, i = {}, [], h, 1
    while i < len(argv):
        t = str(argv[i])
        if t.startswith("-"):
            name, eq, val = t.partition("=")
            if name not in cur.flags:
                bad.append(name)
            elif name in cur.value_flags and not eq:
                i += 1
                val = str(argv[i]) if i < len(argv) else ""
            given[name] = val
        elif cur is h and h.subcommands:
            if t not in h.subcommands:
                bad.append(f"subcommand {t}")
            else:
                cur = h.subcommands[t] or h
        i += 1
    if bad:
        report.fail(f"{where}/flags", f"{app} does not accept {', '.join(bad)} (see {app} --help)")
        return None, {}
    report.ok(f"{where}/command", " ".join(str(a) for a in argv))
    return h, given


def check_app_env(where: str, h: AppHelp, env: dict, report: Report) -> None:
    unknown = sorted(n for n in env if n not in h.envs)
    report.check(not unknown, f"{where}/env", f"{len(env)} names, all read by {h.name}",
                 f"{h.name} does not read {', '.join(unknown)} (accepted: {', '.join(sorted(h.envs))})")


def check_excludes(where: str, h: AppHelp, env: dict, flags: dict, report: Report) -> None:
    given = set(flags) | {f for f, e in h.env_of.items() if e in env}
    for f in sorted(given):
        clash = sorted(h.excludes.get(f, set()) & given)
        if clash:
            report.fail(f"{where}/excludes", f"{h.name} refuses {f} together with {', '.join(clash)} "
                        f"(flag or environment, image ENV included)")


def setting(h: AppHelp, flag: str, env: dict, flags: dict):
    """An option's effective value: flag, then environment, then default."""
    if flag in flags:
        return flags[flag]
    name = h.env_of.get(flag)
    if name and name in env:
        return env[name]
    return h.defaults.get(flag)


def port_of(hostport) -> int | None:
    m = re.search(r":(\d+)$", str(hostport or ""))
    return int(m.group(1)) if m else None


def metrics_address(h: AppHelp, env: dict, flags: dict):
    """Where an app serves GET /metrics: the lb on --admin (None when off); the
    backend on --admin when set, else on --listen; userkey-admin nowhere."""
    admin = setting(h, "--admin", env, flags)
    off = admin is None or is_off(admin)
    if h.name == "userkey-lb":
        return None if off else admin
    if h.name == "userkey-backend":
        return setting(h, "--listen", env, flags) if off else admin
    return None


def check_scrape(where: str, h: AppHelp, env: dict, flags: dict, meta, report: Report) -> None:
    """Prometheus scrape annotations (k8s) or labels (compose) of a service
    running an app with /metrics: present, and naming the port and path it
    serves them on, from an address other containers can reach."""
    address = metrics_address(h, env, flags)
    if address is None:
        return
    meta = env_dict(meta)
    w = f"{where}/scrape"
    if h.name == "userkey-backend":
        admin = setting(h, "--admin", env, flags)
        report.check(admin is not None and not is_off(admin), f"{where}/metrics-private",
                     "the backend serves /metrics on its own admin address",
                     "the backend serves /metrics on its main port, where an lb in front forwards anyone's request "
                     "(cache counters tell which ids others look up): give it an admin address (USERKEY_ADMIN)")
    port = port_of(address)
    if str(meta.get("prometheus.io/scrape", "")).lower() != "true":
        report.fail(w, f"{h.name} serves /metrics on port {port}: add prometheus.io/scrape: \"true\", "
                    f"prometheus.io/port: \"{port}\", prometheus.io/path: /metrics")
        return
    given = meta.get("prometheus.io/port")
    report.check(given is not None and given.isdigit() and int(given) == port, w,
                 f"prometheus.io/port {given} is where {h.name} serves /metrics",
                 f"prometheus.io/port is {given!r} but {h.name} serves /metrics on port {port}")
    path = meta.get("prometheus.io/path", "/metrics")
    report.check(path == "/metrics", w, "prometheus.io/path /metrics", f"prometheus.io/path is {path!r}, not /metrics")
    if str(address).startswith("127.") or str(address).startswith("[::1]") or str(address).startswith("localhost:"):
        report.fail(w, f"{h.name} serves /metrics on {address}: unreachable for a scraper in another container")


def upstream_hosts(h: AppHelp, env: dict, flags: dict, command: list) -> list:
    specs = [str(command[i + 1]) for i, a in enumerate(command[:-1]) if a == "--upstream"]
    specs += [str(a).split("=", 1)[1] for a in command if str(a).startswith("--upstream=")]
    if not specs and "USERKEY_LB_UPSTREAM" in env:
        specs = env["USERKEY_LB_UPSTREAM"].split()
    out = []
    for s in specs:
        addr = s.split(",")[0]
        m = re.match(r"^\[?([^\]]+?)\]?:(\d+)$", addr)
        if m:
            out.append((m.group(1), int(m.group(2))))
    return out


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------
# Compose

@dataclass
class ImageFacts:
    """What the compose and k8s checks need to know about our image."""
    env: dict            # ENV of the runtime stage
    packages: set        # apt packages of the runtime stage
    non_root: bool


def our_images(compose: dict, compose_dir: str, dockerfile: str | None) -> set:
    images = set()
    for svc in (compose.get("services") or {}).values():
        b = (svc or {}).get("build")
        if b is None:
            continue
        ctx = b if isinstance(b, str) else b.get("context", ".")
        dfile = "Dockerfile" if isinstance(b, str) else b.get("dockerfile", "Dockerfile")
        path = os.path.normpath(os.path.join(compose_dir, ctx, dfile))
        if dockerfile is None or path == os.path.normpath(os.path.abspath(dockerfile)):
            images.add(svc.get("image", "<built>"))
    return images


def check_compose(compose, compose_dir: str, dockerfile: str | None, apps: dict, facts: ImageFacts,
                  report: Report, where: str = "compose") -> set:
    """Checks a parsed compose document; returns the app binaries it runs."""
    binaries = set()
    if not isinstance(compose, dict) or not isinstance(compose.get("services"), dict):
        report.fail(f"{where}/parse", "no services: mapping")
        return binaries
    services = compose["services"]
    ours = our_images(compose, compose_dir, dockerfile)
    report.check(bool(ours), f"{where}/image", f"services build our Dockerfile as {', '.join(sorted(ours))}",
                 "no service builds the userkey Dockerfile")
    parsed = {}
    for name, svc in services.items():
        svc = svc or {}
        w = f"{where}/{name}"
        # Health checks everywhere; depends_on waits for health.
        hc = svc.get("healthcheck") or {}
        test = hc.get("test")
        has_hc = bool(test) and not hc.get("disable") and test not in (["NONE"], "NONE")
        report.check(has_hc, f"{w}/healthcheck", "present", "no healthcheck")
        if has_hc and isinstance(test, list) and test and test[0] == "CMD":
            spaced = [a for a in test[1:] if re.search(r"\s", str(a))]
            report.check(not spaced, f"{w}/healthcheck", "exec-form arguments without spaces",
                         f"argument {spaced[0]!r} has spaces: podman 4.3 splits exec-form health-check "
                         "arguments at spaces (drop them, or use CMD-SHELL)" if spaced else "")
        deps = svc.get("depends_on")
        if deps is not None:
            if isinstance(deps, list):
                report.fail(f"{w}/depends_on", "list form starts dependencies without waiting for health; "
                            "use `NAME: {condition: service_healthy}`")
            else:
                for d, spec in deps.items():
                    cond = (spec or {}).get("condition")
                    report.check(cond == "service_healthy", f"{w}/depends_on", f"{d}: service_healthy",
                                 f"{d}: condition is {cond!r}, not service_healthy")
                    report.check(d in services, f"{w}/depends_on", f"{d} exists", f"{d} is not a service")
        # Secrets: only references, in every service.
        env = env_dict(svc.get("environment"))
        ok = all([check_secret_value(w, n, v, report) for n, v in env.items()])
        for b in ("command", "entrypoint"):
            for a in (svc.get(b) if isinstance(svc.get(b), list) else [svc.get(b) or ""]):
                ok = check_secret_value(w, b, str(a), report) and ok
        if ok:
            report.ok(f"{w}/secrets", "no literal credentials")
        if svc.get("image") not in ours and "build" not in svc:
            continue
        # Our image: the command names an app; env names and flags are the app's.
        cmd = svc.get("command")
        argv = shlex.split(cmd) if isinstance(cmd, str) else list(cmd or [])
        h, flags = check_command(w, argv, apps, report)
        if h is None:
            continue
        binaries.add(h.name)
        for f in svc.get("env_file") or []:
            path = os.path.join(compose_dir, f if isinstance(f, str) else f.get("path", ""))
            if os.path.exists(path):
                with open(path) as fh:
                    for line in fh:
                        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
                            env.setdefault(line.split("=", 1)[0].strip(), "")
        check_app_env(w, h, env, report)
        effective = {**facts.env, **env}
        check_excludes(w, h, effective, flags, report)
        check_scrape(w, h, effective, flags, svc.get("labels"), report)
        parsed[name] = (h, effective, flags, argv, svc)
        # The health check must reach the app with a tool the image has.
        tool = next((t for t in ("curl", "wget") if t in " ".join(map(str, test or []))), None)
        if tool:
            report.check(tool in facts.packages, f"{w}/healthcheck", f"{tool} is installed in the image",
                         f"the healthcheck runs {tool}, which the runtime stage does not install")
        hc_ports = {int(p) for p in re.findall(r"://[^/:\s]+:(\d+)", " ".join(map(str, test or [])))}
        app_ports = {port_of(setting(h, f, effective, flags)) for f in ("--listen", "--admin")} - {None}
        if hc_ports:
            report.check(hc_ports <= app_ports, f"{w}/healthcheck", f"probes port {sorted(hc_ports)} the app listens on",
                         f"probes {sorted(hc_ports)} but {h.name} listens on {sorted(app_ports)}")
        listen = setting(h, "--listen", effective, flags)
        if listen and str(listen).startswith("127.") and h.name != "userkey-admin":
            report.fail(f"{w}/listen", f"{h.name} listens on {listen}: unreachable from other containers")
        lp = port_of(listen)
        if h.name != "userkey-admin" and lp is not None and lp < 1024 and facts.non_root:
            start = (svc.get("sysctls") or {}).get("net.ipv4.ip_unprivileged_port_start") \
                if isinstance(svc.get("sysctls"), dict) else None
            report.check(start is not None and int(start) <= lp, f"{w}/listen",
                         f"non-root port {lp} allowed by sysctl net.ipv4.ip_unprivileged_port_start={start}",
                         f"a non-root user cannot bind port {lp} without sysctls: "
                         f"net.ipv4.ip_unprivileged_port_start: 0 (or listen on >= 1024)")

    # The lb: every upstream is another service, reachable on its listen port,
    # and healthy before the lb starts (it resolves names at start and on SIGHUP
    # only, and exits with "cannot resolve upstream" when a name is unknown).
    for name, (h, env, flags, argv, svc) in parsed.items():
        if h.name != "userkey-lb":
            continue
        w = f"{where}/{name}"
        ups = upstream_hosts(h, env, flags, argv)
        if not ups and "--config" not in flags and "USERKEY_LB_CONFIG" not in env:
            report.fail(f"{w}/upstreams", "no upstream (USERKEY_LB_UPSTREAM, --upstream or --config)")
        deps = svc.get("depends_on") if isinstance(svc.get("depends_on"), dict) else {}
        for host, port in ups:
            if is_ip(host):
                report.note(f"{w}/upstreams", f"{host}:{port} is a fixed IP address")
                continue
            if host not in services:
                report.fail(f"{w}/upstreams", f"{host}:{port}: no service '{host}' in this file "
                            "(the lb must resolve every name when it starts)")
                continue
            report.check(host in deps, f"{w}/upstreams", f"{host}:{port} is a service the lb waits for",
                         f"{host}:{port}: add depends_on {host}: condition: service_healthy "
                         "(names resolve at start; an unknown one stops the lb)")
            if host in parsed:
                bh, benv, bflags, _, _ = parsed[host]
                bport = port_of(setting(bh, "--listen", benv, bflags))
                report.check(bport == port, f"{w}/upstreams", f"{host} listens on {port}",
                             f"{host}:{port} but {host} listens on port {bport}")
    return binaries


# --------------------------------------------------------------------------
# An override file that swaps images (docker/compose.podman.yaml)

# What an image-swapping override may set per service: the image; build args
# the Dockerfile declares (its base image); and a health check's command, which
# runs inside the image (its timing, retries and start period stay).
OVERRIDE_SERVICE_KEYS = {"image", "build", "healthcheck"}


def check_override(override, base, df, report: Report, where: str = "override") -> None:
    if not isinstance(override, dict) or not isinstance(override.get("services"), dict):
        report.fail(f"{where}/parse", "no services: mapping")
        return
    extra = sorted(k for k in override if k != "services" and not str(k).startswith("x-"))
    report.check(not extra, f"{where}/top-level", "only services (and x- extensions)",
                 f"sets {', '.join(extra)}: an image override must not change networks, volumes or the name")
    base_services = (base or {}).get("services") or {}
    declared_args = {a.split("=", 1)[0].strip() for a in (df.global_args if df else {})}
    for name, svc in override["services"].items():
        w = f"{where}/{name}"
        if name not in base_services:
            report.fail(f"{w}/service", f"'{name}' is not a service of the base file: an override adds none")
            continue
        svc = svc or {}
        keys = sorted(set(svc) - OVERRIDE_SERVICE_KEYS)
        report.check(not keys, f"{w}/keys", "sets " + ", ".join(sorted(svc)) + " only",
                     f"changes {', '.join(keys)}: only {', '.join(sorted(OVERRIDE_SERVICE_KEYS))} may change")
        b = svc.get("build")
        if b is not None:
            base_b = base_services[name].get("build")
            if base_b is None:
                report.fail(f"{w}/build", "builds a service the base file pulls")
            elif not isinstance(b, dict) or set(b) - {"args"}:
                report.fail(f"{w}/build", "may set build args only, not the context or Dockerfile")
            else:
                args = env_dict(b.get("args"))
                unknown = sorted(set(args) - declared_args) if df else []
                report.check(not unknown, f"{w}/build", "build args " + ", ".join(sorted(args)),
                             f"build args {', '.join(unknown)} are not ARGs of the Dockerfile")
        hc = svc.get("healthcheck")
        if hc is not None:
            report.check(isinstance(hc, dict) and set(hc) == {"test"}, f"{w}/healthcheck",
                         "replaces the check's command only",
                         "may replace the health check's test only (interval, timeout, retries, start_period stay)")
        if "image" in svc and "build" not in svc and base_services[name].get("build") is not None:
            report.fail(f"{w}/image", "replaces the image of a service the base file builds; set build args instead")


# --------------------------------------------------------------------------
# Kubernetes example

def check_k8s(docs: list, apps: dict, report: Report, where: str = "k8s") -> None:
    docs = [d for d in docs if d is not None]
    report.check(bool(docs), f"{where}/parse", f"{len(docs)} documents: " + ", ".join(
        f"{d.get('kind')}/{(d.get('metadata') or {}).get('name')}" for d in docs if isinstance(d, dict)),
        "no documents")
    by_kind = {}
    for d in docs:
        if not isinstance(d, dict) or not all(k in d for k in ("apiVersion", "kind", "metadata")):
            report.fail(f"{where}/parse", f"a document lacks apiVersion, kind or metadata: {str(d)[:60]}")
            continue
        by_kind.setdefault(d["kind"], {})[d["metadata"].get("name")] = d
        if d["kind"] == "Secret" and (d.get("data") or d.get("stringData")):
            report.fail(f"{where}/secrets", f"Secret {d['metadata'].get('name')} carries values; "
                        "create it with kubectl instead")
    workloads = {**by_kind.get("Deployment", {}), **by_kind.get("StatefulSet", {})}
    for wname, wl in workloads.items():
        template = ((wl.get("spec") or {}).get("template") or {})
        pod = template.get("spec") or {}
        annotations = (template.get("metadata") or {}).get("annotations")
        # A helper that re-resolves the lb's upstreams must watch the same list.
        lists = {str(e.get("value")) for c in pod.get("containers") or [] for e in c.get("env") or []
                 if e.get("name") in ("UPSTREAMS", "USERKEY_LB_UPSTREAM")}
        if len(lists) > 1:
            report.fail(f"{where}/{wl['kind']}/{wname}/upstreams", "containers disagree on the upstream list: "
                        + " | ".join(sorted(lists)))
        for ctr in pod.get("containers") or []:
            w = f"{where}/{wl['kind']}/{wname}/{ctr.get('name')}"
            argv = list(ctr.get("command") or []) + list(ctr.get("args") or [])
            helper = bool(argv) and os.path.basename(str(argv[0])) in ("sh", "bash", "dash")
            h, flags = (None, {}) if helper else check_command(w, argv, apps, report)
            if helper:
                report.note(f"{w}/command", "a shell helper, not one of the apps: env and probes not checked")
            env = {}
            for e in ctr.get("env") or []:
                n = e.get("name")
                env[n] = str(e.get("value", "")) if "value" in e else "<from>"
                if "value" in e:
                    check_secret_value(w, n, str(e["value"]), report, k8s=True)
                elif SECRET_NAME.search(n) and not ((e.get("valueFrom") or {}).get("secretKeyRef")):
                    report.fail(f"{w}/secrets", f"{n} must come from valueFrom.secretKeyRef")
            if h is None:
                continue
            check_app_env(w, h, env, report)
            check_scrape(w, h, env, flags, annotations, report)
            for probe in ("readinessProbe", "livenessProbe"):
                report.check(bool(ctr.get(probe)), f"{w}/{probe}", "present", f"no {probe}")
            if h.name == "userkey-lb":
                for host, port in upstream_hosts(h, env, flags, argv):
                    m = re.match(r"^([a-z0-9-]+)-(\d+)\.([a-z0-9-]+)(\..*)?$", host)
                    sts = by_kind.get("StatefulSet", {}).get(m.group(1)) if m else None
                    if sts is None:
                        if host.split(".")[0] in by_kind.get("Service", {}):
                            report.fail(f"{w}/upstreams", f"{host} is a Service name: it resolves to one address, "
                                        "so the lb would balance over a single upstream")
                        else:
                            report.fail(f"{w}/upstreams", f"{host}: no StatefulSet pod of that name in this file")
                        continue
                    spec = sts.get("spec") or {}
                    svc = by_kind.get("Service", {}).get(m.group(3)) or {}
                    good = int(m.group(2)) < int(spec.get("replicas", 1)) and spec.get("serviceName") == m.group(3) \
                        and (svc.get("spec") or {}).get("clusterIP") == "None"
                    report.check(good, f"{w}/upstreams", f"{host}:{port} is a pod of StatefulSet {m.group(1)} "
                                 f"behind headless Service {m.group(3)}",
                                 f"{host}: ordinal beyond replicas, or serviceName/headless Service mismatch")


# --------------------------------------------------------------------------
# Self-test: broken snippets the checks must catch

GOOD_COMPOSE = """
services:
  db:
    image: mongo:7
    environment:
      MONGO_INITDB_ROOT_PASSWORD: ${ROOT_PASS:?set it}
    healthcheck: {test: ["CMD", "true"]}
  backend-1:
    image: userkey:test
    build: {context: ., dockerfile: Dockerfile}
    command: ["userkey-backend", "--cache-ttl", "5s"]
    environment:
      USERKEY_LISTEN: 0.0.0.0:5000
      USERKEY_ADMIN: 0.0.0.0:9101
      USERKEY_MONGO_URI: mongodb://db:27017/
      mongo_user: ${mongo_user:?set mongo_user}
      mongo_pass: ${mongo_pass:?set mongo_pass}
    healthcheck: {test: ["CMD", "curl", "-fsS", "http://127.0.0.1:5000/readyz"]}
    labels: {prometheus.io/scrape: "true", prometheus.io/port: "9101", prometheus.io/path: /metrics}
    depends_on: {db: {condition: service_healthy}}
  lb:
    image: userkey:test
    command: ["userkey-lb"]
    environment:
      USERKEY_LB_LISTEN: 0.0.0.0:8080
      USERKEY_LB_UPSTREAM: backend-1:5000
    healthcheck: {test: ["CMD", "curl", "-fsS", "http://127.0.0.1:9100/healthz"]}
    labels: [prometheus.io/scrape=true, prometheus.io/port=9100]
    depends_on: {backend-1: {condition: service_healthy}}
"""

GOOD_DOCKERFILE = """
ARG IMG=debian:12-slim
FROM ${IMG} AS build
RUN apt-get install -y g++ cmake
RUN cmake --preset release && cmake --build --preset release && cmake --install build-release --prefix /opt/u
FROM ${IMG}
RUN apt-get install -y curl
COPY --from=build /opt/u/bin/userkey-backend /opt/u/bin/userkey-lb /opt/u/bin/userkey-admin /opt/u/bin/
COPY --from=build /opt/u/share/userkey/dump /opt/u/share/userkey/dump
ENV USERKEY_LB_ADMIN=0.0.0.0:9100
USER 10001
CMD ["userkey-backend"]
"""

GOOD_PRESETS = {
    "configurePresets": [
        {"name": "default", "generator": "Ninja", "binaryDir": "${sourceDir}/build",
         "cacheVariables": {"CMAKE_BUILD_TYPE": "RelWithDebInfo", "USERKEY_WERROR": "ON", "USERKEY_BUILD_TESTS": "ON"}},
        {"name": "release", "generator": "Ninja", "binaryDir": "${sourceDir}/build-release",
         "cacheVariables": {"CMAKE_BUILD_TYPE": "Release", "USERKEY_WERROR": "ON", "USERKEY_BUILD_TESTS": "OFF"}},
        {"name": "make", "generator": "Unix Makefiles", "binaryDir": "${sourceDir}/build-make",
         "cacheVariables": {"CMAKE_BUILD_TYPE": "Release", "USERKEY_WERROR": "ON", "USERKEY_BUILD_TESTS": "OFF"}},
        {"name": "lax", "generator": "Ninja", "binaryDir": "${sourceDir}/build-lax",
         "cacheVariables": {"CMAKE_BUILD_TYPE": "Release", "USERKEY_WERROR": "OFF", "USERKEY_BUILD_TESTS": "OFF"}},
    ],
    "buildPresets": [{"name": "release", "configurePreset": "release"}, {"name": "make", "configurePreset": "make"},
                     {"name": "lax", "configurePreset": "lax"}],
}

GOOD_K8S = """
apiVersion: v1
kind: Service
metadata: {name: backend}
spec: {clusterIP: None, selector: {app: backend}, ports: [{port: 5000}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: backend}
spec:
  serviceName: backend
  replicas: 2
  template:
    metadata:
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9101"}
    spec:
      containers:
        - name: backend
          image: userkey:test
          command: ["userkey-backend"]
          env:
            - {name: USERKEY_LISTEN, value: "0.0.0.0:5000"}
            - {name: USERKEY_ADMIN, value: "0.0.0.0:9101"}
            - name: mongo_pass
              valueFrom: {secretKeyRef: {name: s, key: mongo_pass}}
          readinessProbe: {httpGet: {path: /readyz, port: 5000}}
          livenessProbe: {httpGet: {path: /healthz, port: 5000}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: lb}
spec:
  template:
    metadata:
      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9100", prometheus.io/path: /metrics}
    spec:
      containers:
        - name: lb
          image: userkey:test
          command: ["userkey-lb"]
          env:
            - {name: USERKEY_LB_UPSTREAM, value: "backend-0.backend:5000 backend-1.backend:5000"}
            - {name: USERKEY_LB_ADMIN, value: "0.0.0.0:9100"}
          readinessProbe: {httpGet: {path: /healthz, port: 9100}}
          livenessProbe: {httpGet: {path: /healthz, port: 9100}}
"""


GOOD_OVERRIDE = """
services:
  db:
    image: localhost/other-db:1
    healthcheck: {test: ["CMD", "other-ping"]}
  backend-1:
    build: {args: {IMG: localhost/debian:12-local}}
"""


def _mutate(text: str, old: str, new: str) -> str:
    assert old in text, f"self-test snippet has no {old!r}"
    return text.replace(old, new, 1)


def self_test(apps: dict) -> int:
    df_good = parse_dockerfile(GOOD_DOCKERFILE)
    facts = ImageFacts(env=df_good.env(df_good.runtime), packages=df_good.apt_packages(df_good.runtime), non_root=True)
    G = GOOD_COMPOSE
    compose_cases = [
        ("unknown env var", _mutate(G, "USERKEY_LISTEN: 0.0.0.0:5000", "USERKEY_LISTN: 0.0.0.0:5000"), "does not read USERKEY_LISTN"),
        ("env var of another app", _mutate(G, "USERKEY_LB_UPSTREAM: backend-1:5000",
                                           "USERKEY_LB_UPSTREAM: backend-1:5000\n      mongo_pass: ${mongo_pass}"),
         "does not read mongo_pass"),
        ("unknown command", _mutate(G, '["userkey-lb"]', '["userkey-frontend"]'), "is not one of"),
        ("shell-form unknown command", _mutate(G, '["userkey-lb"]', '"nginx -g daemon"'), "is not one of"),
        ("no command", _mutate(G, '    command: ["userkey-lb"]\n', ""), "no command"),
        ("unknown flag", _mutate(G, '"--cache-ttl"', '"--cache-tll"'), "does not accept --cache-tll"),
        ("literal password", _mutate(G, "${mongo_pass:?set mongo_pass}", "hunter2"), "must be a bare"),
        ("password default", _mutate(G, "${mongo_pass:?set mongo_pass}", "${mongo_pass:-hunter2}"), "must be a bare"),
        ("password in URI", _mutate(G, "mongodb://db:27017/", "mongodb://app:hunter2@db:27017/"), "password in a URI"),
        ("healthcheck argument with spaces", _mutate(G, '["CMD", "true"]', '["CMD", "sh", "-c", "exit 0"]'),
         "splits exec-form"),
        ("missing healthcheck", _mutate(G, '    healthcheck: {test: ["CMD", "true"]}\n', ""), "no healthcheck"),
        ("depends_on list", _mutate(G, "depends_on: {db: {condition: service_healthy}}", "depends_on: [db]"), "list form"),
        ("depends_on started", _mutate(G, "{db: {condition: service_healthy}}", "{db: {condition: service_started}}"),
         "not service_healthy"),
        ("unknown upstream host", _mutate(G, "USERKEY_LB_UPSTREAM: backend-1:5000", "USERKEY_LB_UPSTREAM: backend-9:5000"),
         "no service 'backend-9'"),
        ("upstream port mismatch", _mutate(G, "USERKEY_LB_UPSTREAM: backend-1:5000", "USERKEY_LB_UPSTREAM: backend-1:5001"),
         "listens on port 5000"),
        ("lb not waiting for upstream", _mutate(G, "depends_on: {backend-1: {condition: service_healthy}}",
                                                "depends_on: {db: {condition: service_healthy}}"), "add depends_on backend-1"),
        ("dump with mongo uri", _mutate(G, "USERKEY_LISTEN: 0.0.0.0:5000", "USERKEY_LISTEN: 0.0.0.0:5000\n      USERKEY_DUMP: dump"),
         "refuses --dump together with --mongo-uri"),
        ("healthcheck wrong port", _mutate(G, "127.0.0.1:5000/readyz", "127.0.0.1:5001/readyz"), "listens on [5000, 9101]"),
        ("loopback listen", _mutate(G, "USERKEY_LB_LISTEN: 0.0.0.0:8080", "USERKEY_LB_LISTEN: 127.0.0.1:8080"), "unreachable"),
        ("backend not scraped", _mutate(G, '    labels: {prometheus.io/scrape: "true", prometheus.io/port: "9101", '
                                           'prometheus.io/path: /metrics}\n', ""), "add prometheus.io/scrape"),
        ("scrape port wrong", _mutate(G, 'prometheus.io/port: "9101"', 'prometheus.io/port: "9100"'),
         "serves /metrics on port 9101"),
        ("backend metrics on its main port", _mutate(G, "      USERKEY_ADMIN: 0.0.0.0:9101\n", ""),
         "give it an admin address"),
        ("scrape path wrong", _mutate(G, "prometheus.io/path: /metrics}", "prometheus.io/path: /stats}"), "not /metrics"),
        ("backend metrics moved by --admin", _mutate(G, '"--cache-ttl", "5s"]', '"--cache-ttl", "5s", "--admin", "0.0.0.0:9200"]'),
         "serves /metrics on port 9200"),
        ("lb admin on loopback", _mutate(G, "USERKEY_LB_UPSTREAM: backend-1:5000",
                                         "USERKEY_LB_UPSTREAM: backend-1:5000\n      USERKEY_LB_ADMIN: 127.0.0.1:9100"),
         "unreachable for a scraper"),
        ("port 80 without sysctl", _mutate(G, "USERKEY_LB_LISTEN: 0.0.0.0:8080", "USERKEY_LB_LISTEN: 0.0.0.0:80"),
         "cannot bind port 80"),
    ]
    D = GOOD_DOCKERFILE
    docker_cases = [
        ("unknown preset", _mutate(D, "cmake --preset release", "cmake --preset relase"), "is not a configurePreset"),
        ("other generator", D.replace("release", "make"), "generator"),
        ("no -Werror", D.replace("release", "lax"), "USERKEY_WERROR"),
        ("tests in image", D.replace("--preset release", "--preset default").replace("build-release", "build"),
         "USERKEY_BUILD_TESTS"),
        ("binary not copied", _mutate(D, " /opt/u/bin/userkey-lb", ""), "userkey-lb"),
        ("root user", _mutate(D, "USER 10001", "USER root"), "non-root"),
        ("entrypoint", _mutate(D, 'CMD ["userkey-backend"]', 'ENTRYPOINT ["userkey-backend"]'), "ENTRYPOINT"),
        ("unknown image env", _mutate(D, "ENV USERKEY_LB_ADMIN", "ENV USERKEY_LB_ADMN"), "USERKEY_LB_ADMN"),
        ("secret baked in", _mutate(D, "USER 10001", "ENV mongo_pass=hunter2\nUSER 10001"), "secrets must come at run time"),
        ("not debian 12", _mutate(D, "debian:12-slim", "ubuntu:22.04"), "not debian:12"),
    ]
    K = GOOD_K8S
    k8s_cases = [
        ("k8s literal secret", _mutate(K, "- name: mongo_pass\n              valueFrom: {secretKeyRef: {name: s, key: mongo_pass}}",
                                       "- {name: mongo_pass, value: hunter2}"), "valueFrom.secretKeyRef"),
        ("k8s Secret with data", K + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {mongo_pass: x}\n",
         "carries values"),
        ("k8s upstream is a Service", _mutate(K, "backend-0.backend:5000 backend-1.backend:5000", "backend:5000"),
         "is a Service name"),
        ("k8s upstream beyond replicas", _mutate(K, "backend-1.backend:5000", "backend-2.backend:5000"), "ordinal beyond"),
        ("k8s no readiness", _mutate(K, "          readinessProbe: {httpGet: {path: /readyz, port: 5000}}\n", ""),
         "no readinessProbe"),
        ("k8s unknown env", _mutate(K, "USERKEY_LISTEN", "USERKEY_PORT"), "does not read USERKEY_PORT"),
        ("k8s lb not scraped", _mutate(K, '      annotations: {prometheus.io/scrape: "true", prometheus.io/port: "9100", '
                                          'prometheus.io/path: /metrics}\n', "      annotations: {}\n"), "add prometheus.io/scrape"),
        ("k8s backend scrape port", _mutate(K, 'prometheus.io/port: "9101"', 'prometheus.io/port: "5000"'),
         "serves /metrics on port 9101"),
        ("k8s backend metrics on its main port", _mutate(K, '            - {name: USERKEY_ADMIN, value: "0.0.0.0:9101"}\n', ""),
         "give it an admin address"),
        ("k8s helper list drift", _mutate(K, "          readinessProbe: {httpGet: {path: /healthz, port: 9100}}\n",
                                          "          readinessProbe: {httpGet: {path: /healthz, port: 9100}}\n"
                                          "        - name: helper\n          image: userkey:test\n          command: [bash, -c, 'true']\n"
                                          "          env: [{name: UPSTREAMS, value: 'backend-0.backend:5000'}]\n"),
         "disagree on the upstream list"),
    ]

    O = GOOD_OVERRIDE
    override_cases = [
        ("override adds a port", _mutate(O, "    image: localhost/other-db:1", "    image: localhost/other-db:1\n    ports: ['27017:27017']"),
         "changes ports"),
        ("override changes settings", _mutate(O, "    image: localhost/other-db:1",
                                             "    image: localhost/other-db:1\n    environment: {A: b}"), "changes environment"),
        ("override adds a service", O + "  extra:\n    image: x\n", "not a service of the base file"),
        ("override adds a volume", O + "volumes:\n  v: {}\n", "must not change networks"),
        ("override retimes a check", _mutate(O, '{test: ["CMD", "other-ping"]}', '{test: ["CMD", "other-ping"], retries: 99}'),
         "test only"),
        ("override moves the context", _mutate(O, "{args: {IMG: localhost/debian:12-local}}", "{context: /elsewhere}"),
         "build args only"),
        ("override unknown build arg", _mutate(O, "IMG:", "BASE:"), "not ARGs of the Dockerfile"),
        ("override swaps our image", _mutate(O, "    build: {args: {IMG: localhost/debian:12-local}}", "    image: other:1"),
         "service the base file builds"),
    ]

    failures = 0

    def run(kind: str, label: str, text: str, expect: str | None) -> None:
        nonlocal failures
        r = Report(quiet=True)
        if kind == "compose":
            check_compose(yaml.safe_load(text), "/selftest", "/selftest/Dockerfile", apps, facts, r)
        elif kind == "dockerfile":
            check_dockerfile(parse_dockerfile(text), GOOD_PRESETS, None, apps, set(APPS), None, r)
        elif kind == "override":
            check_override(yaml.safe_load(text), yaml.safe_load(G), df_good, r)
        else:
            check_k8s(list(yaml.safe_load_all(text)), apps, r)
        if expect is None:
            good = not r.failures
            detail = "no failure" if good else "unexpected: " + "; ".join(r.failures)
        else:
            good = any(expect in f for f in r.failures)
            detail = f"caught ({expect})" if good else f"NOT caught: wanted '{expect}', got {r.failures or 'no failure'}"
        print(f"{'PASS' if good else 'FAIL'} self-test/{kind}: {label}: {detail}")
        failures += 0 if good else 1

    run("compose", "good snippet", G, None)
    for label, text, expect in compose_cases:
        run("compose", label, text, expect)
    run("dockerfile", "good snippet", D, None)
    for label, text, expect in docker_cases:
        run("dockerfile", label, text, expect)
    run("override", "good snippet", O, None)
    for label, text, expect in override_cases:
        run("override", label, text, expect)
    run("k8s", "good snippet", K, None)
    for label, text, expect in k8s_cases:
        run("k8s", label, text, expect)
    total = 4 + len(compose_cases) + len(docker_cases) + len(k8s_cases) + len(override_cases)
    print(f"self-test: {total - failures}/{total} cases behaved as expected")
    return 1 if failures else 0


# --------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compose", help="docker/compose.yaml")
    ap.add_argument("--bin-dir", required=True, help="directory holding the built userkey-* binaries")
    ap.add_argument("--dockerfile", help="docker/Dockerfile")
    ap.add_argument("--presets", help="CMakePresets.json")
    ap.add_argument("--install-deps", help="scripts/install-deps.sh (default: next to --presets)")
    ap.add_argument("--k8s", help="docker/k8s.yaml (default: next to --compose, when present)")
    ap.add_argument("--override", action="append", default=[],
                    help="an override file that may swap images only (docker/compose.podman.yaml); repeatable")
    ap.add_argument("--self-test", action="store_true", help="check that broken snippets are caught")
    args = ap.parse_args()

    report = Report()
    apps = load_apps(args.bin_dir, report)
    if len(apps) != len(APPS):
        print("RESULT: FAIL (the apps' --help is needed for every check)")
        return 1
    if args.self_test:
        return self_test(apps)
    if not (args.compose and args.dockerfile and args.presets):
        ap.error("--compose, --dockerfile and --presets are required (or --self-test)")

    compose_dir = os.path.dirname(os.path.abspath(args.compose))
    try:
        with open(args.compose) as f:
            compose = yaml.safe_load(f)
        report.ok("compose/parse", args.compose)
    except (OSError, yaml.YAMLError) as e:
        report.fail("compose/parse", str(e))
        compose = None
    try:
        with open(args.dockerfile) as f:
            df = parse_dockerfile(f.read())
        report.ok("dockerfile/parse", args.dockerfile)
    except OSError as e:
        report.fail("dockerfile/parse", str(e))
        df = None
    try:
        with open(args.presets) as f:
            presets = json.load(f)
        report.ok("presets/parse", args.presets)
    except (OSError, ValueError) as e:
        report.fail("presets/parse", str(e))
        presets = {}

    facts = ImageFacts(env={}, packages=set(), non_root=True)
    if df is not None and df.stages:
        user = df.last(df.runtime, "USER")
        facts = ImageFacts(env=df.env(df.runtime), packages=df.apt_packages(df.runtime),
                           non_root=user is not None and user.split(":")[0] not in ("root", "0"))
    binaries = set()
    if compose is not None:
        binaries = check_compose(compose, compose_dir, args.dockerfile, apps, facts, report)
    if df is not None:
        deps_path = args.install_deps or os.path.join(os.path.dirname(os.path.abspath(args.presets)),
                                                      "scripts", "install-deps.sh")
        deps_text = open(deps_path).read() if os.path.exists(deps_path) else None
        if deps_text is None:
            report.note("dockerfile/build-deps", f"skipped: {deps_path} not found")
        # The image serves all three apps, whatever compose runs.
        check_dockerfile(df, presets, deps_text, apps, binaries | set(APPS), args.bin_dir, report)

    for path in args.override:
        try:
            with open(path) as f:
                override = yaml.safe_load(f)
            report.ok("override/parse", path)
            check_override(override, compose, df, report, where=f"override:{os.path.basename(path)}")
        except (OSError, yaml.YAMLError) as e:
            report.fail("override/parse", str(e))

    k8s = args.k8s or os.path.join(compose_dir, "k8s.yaml")
    if args.k8s or os.path.exists(k8s):
        try:
            with open(k8s) as f:
                docs = list(yaml.safe_load_all(f))
            report.ok("k8s/parse", k8s)
            check_k8s(docs, apps, report)
        except (OSError, yaml.YAMLError) as e:
            report.fail("k8s/parse", str(e))

    if report.failures:
        print(f"RESULT: FAIL ({len(report.failures)} failed checks)")
        return 1
    print("RESULT: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
