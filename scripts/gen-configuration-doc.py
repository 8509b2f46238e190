#!/usr/bin/env python3
"""Generates docs/configuration.md from the apps' own --help and the example
lb config, so the document cannot drift from the code. Also generates the
lists of lb settings a SIGHUP applies and those that need a restart, from the
settings table (lib/lb/proxy_settings.cpp, its `.reloadable = true` marks,
checked against userkey-lb --help), into the marked blocks of
docs/operations.md (Reload) and docker/lb.example.toml (its header comment).

  scripts/gen-configuration-doc.py BIN_DIR            print the document
  scripts/gen-configuration-doc.py BIN_DIR --write    rewrite docs/configuration.md and the marked blocks
  scripts/gen-configuration-doc.py BIN_DIR --check    exit 1 if a committed file differs
"""
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "configuration.md"
OPERATIONS = ROOT / "docs" / "operations.md"
EXAMPLE = ROOT / "docker" / "lb.example.toml"
LB_TABLE = ROOT / "lib" / "lb" / "proxy_settings.cpp"
APPS = [
    ("userkey-backend", "One backend: serves the `/` contract from the embedded dump or MongoDB."),
    ("userkey-lb", "The load balancer in front of the backends."),
    ("userkey-admin", "Restores a dump into MongoDB and reads or writes keys (replaces the manual mongo steps)."),
]
OPTION = re.compile(r"^\s{2}(-h,)?(--[a-z0-9-]+)(.*)$")
# Options of userkey-lb --help that are not settings of its table: actions
# (CommandLine::add_version, add_action) and the config file itself.
NOT_SETTINGS = {"--help", "--version", "--check-config", "--config"}


def parse_help(text):
    """Yields (flag, type_and_default, env, description) from CLI11's help."""
    rows, current = [], None
    section = None
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            section = line[:-1]
            continue
        m = OPTION.match(line)
        if m and section == "Options":
            flag, rest = m.group(2), m.group(3)
            env = re.search(r"\(Env:([A-Za-z0-9_]+)\)", rest)
            rest_wo_env = re.sub(r"\(Env:[A-Za-z0-9_]+\)", "", rest)
            excludes = re.search(r"Excludes: (.*?)(?:\s{2,}|$)", rest_wo_env)
            rest_wo_env = re.sub(r"Excludes: [^ ]+( [^ ]+)*?(?=\s{2,}|$)", "", rest_wo_env)
            if re.match(r"\s{2,}", rest_wo_env):  # no type: a flag such as --version, its help at once
                typ, desc = "", rest_wo_env.strip()
            else:
                parts = re.split(r"\s{2,}", rest_wo_env.strip(), maxsplit=1)
                typ = parts[0].strip() if parts and parts[0] else ""
                desc = parts[1].strip() if len(parts) > 1 else ""
            current = {"flag": flag, "type": typ, "env": env.group(1) if env else "",
                       "desc": desc, "excludes": excludes.group(1).strip() if excludes else ""}
            rows.append(current)
        elif section == "Options" and current is not None and line.startswith(" " * 6):
            current["desc"] = (current["desc"] + " " + line.strip()).strip()
        elif section == "Subcommands" and line.startswith("  "):
            name, _, desc = line.strip().partition(" ")
            rows.append({"flag": name, "type": "subcommand", "env": "", "desc": desc.strip(), "excludes": ""})
    return rows


def split_type(typ):
    """CLI11's "TYPE=DEFAULT": the default follows the last "=" outside
    brackets and braces ("HOST:PORT[,weight=N]" has none)."""
    depth, at = 0, -1
    for i, ch in enumerate(typ):
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "=" and depth == 0:
            at = i
    if at < 0:
        return typ, ""
    return typ[:at], typ[at + 1:]


def cell(text):
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def lb_settings(bin_dir):
    """(key, flag, reloadable) for every lb setting, in table order, read from
    the t.add({...}) entries of make_table() in lib/lb/proxy_settings.cpp.
    The flags found must be exactly those userkey-lb --help lists (besides
    NOT_SETTINGS), so an entry this reading missed fails here."""
    src = LB_TABLE.read_text()
    start = src.index("SettingsTable<ProxyConfig> make_table(")
    body = src[start:src.index("return t;", start)]
    rows = []
    for entry in re.finditer(r"\bt\.add\(\{(.*?)\},\s*(?:field|optional_address)\(", body, re.S):
        info = entry.group(1)
        key = re.search(r'\.key = "([^"]+)"', info)
        flag = re.search(r'\.flag = "([^"]+)"', info)
        if not key or not flag:
            sys.exit(f"{LB_TABLE.relative_to(ROOT)}: cannot read an entry: {info!r}")
        rows.append((key.group(1), flag.group(1), re.search(r"\.reloadable\s*=\s*true", info) is not None))
    help_text = subprocess.run([str(pathlib.Path(bin_dir) / "userkey-lb"), "--help"], capture_output=True,
                               text=True, check=True).stdout
    in_help = {r["flag"] for r in parse_help(help_text) if r["type"] != "subcommand"} - NOT_SETTINGS
    in_table = {flag for _, flag, _ in rows}
    if in_help != in_table:
        sys.exit(f"{LB_TABLE.relative_to(ROOT)} read as {len(in_table)} settings, userkey-lb --help lists "
                 f"{len(in_help)}: only in --help {sorted(in_help - in_table)}, "
                 f"only in the table as read {sorted(in_table - in_help)}")
    return rows


def shown(key):
    return "[[upstream]]" if key == "upstreams" else key


def wrap(words, width, first, rest):
    """Words joined by ", " (the last one ends with "."), wrapped at width."""
    lines, line = [], first
    for i, w in enumerate(words):
        w += "." if i == len(words) - 1 else ","
        if len(line) + 1 + len(w) > width and line.strip("#* "):
            lines.append(line)
            line = rest + w
        else:
            line = (line + " " + w) if line.strip("#* ") else line + w
    lines.append(line)
    return lines


BEGIN_MD = "<!-- begin reload lists: generated by scripts/gen-configuration-doc.py from the settings table -->"
END_MD = "<!-- end reload lists -->"
BEGIN_TOML = "# (begin reload lists: generated by scripts/gen-configuration-doc.py from the settings table)"
END_TOML = "# (end reload lists)"


def reload_lists_md(rows):
    applied = [f"`{shown(k)}`" for k, _, r in rows if r]
    restart = [f"`{shown(k)}`" for k, _, r in rows if not r]
    return ([BEGIN_MD]
            + wrap(applied, 78, "* Applied without dropping connections:", "  ")
            + wrap(restart, 78, "* Logged as `changed but applied only after a restart: …` and ignored until "
                                "then:", "  ")
            + [END_MD])


def reload_lists_toml(rows):
    applied = [shown(k) for k, _, r in rows if r]
    restart = [shown(k) for k, _, r in rows if not r]
    return ([BEGIN_TOML]
            + wrap(applied, 78, "# Applied on SIGHUP without dropping connections:", "#   ")
            + wrap(restart, 78, "# Need a restart (a reload logs them and keeps the running value):", "#   ")
            + [END_TOML])


def replace_block(text, begin, end, block, name):
    """text with the lines from begin to end (inclusive) replaced by block."""
    lines = text.split("\n")
    try:
        b, e = lines.index(begin), lines.index(end)
    except ValueError:
        sys.exit(f"{name}: the markers {begin!r} ... {end!r} are missing")
    return "\n".join(lines[:b] + block + lines[e + 1:])


def generated_files(bin_dir):
    """{path: text} of the files whose marked blocks come from the table."""
    rows = lb_settings(bin_dir)
    return {
        OPERATIONS: replace_block(OPERATIONS.read_text(), BEGIN_MD, END_MD, reload_lists_md(rows),
                                  "docs/operations.md"),
        EXAMPLE: replace_block(EXAMPLE.read_text(), BEGIN_TOML, END_TOML, reload_lists_toml(rows),
                               "docker/lb.example.toml"),
    }


def render(bin_dir, example=None):
    out = ["# Configuration", "",
           "<!-- Generated by scripts/gen-configuration-doc.py from each app's --help and",
           "     docker/lb.example.toml; a test fails when this file is out of date. -->", "",
           "Every app takes flags, and each flag has an environment variable; a flag wins",
           "over its environment variable. `userkey-lb` also reads a TOML file (`--config`),",
           "below the environment and the flags. Durations are written `250ms`, `2s`, `1.5s`,",
           "`5m` or `1h` (a bare number is seconds). MongoDB credentials may also come from",
           "`mongo_user` / `mongo_pass` (as in the original demo) when the URI has none.", "",
           "`userkey-backend` and `userkey-lb` also take two flags that are not settings:",
           "`--version` prints the version and the commit built from, and `--check-config`",
           "loads every setting source as a start does (and the files and names they point",
           "at) and prints a one-line summary (exit 0) or the first error and where it came",
           "from (exit 2), without starting anything: see",
           "[operations.md](operations.md#version-and-configuration-check). `/metrics` of both",
           "carries the same version and commit as `userkey_build_info`.", ""]
    for app, about in APPS:
        text = subprocess.run([str(pathlib.Path(bin_dir) / app), "--help"], capture_output=True, text=True,
                              check=True).stdout
        out += [f"## {app}", "", about, "", "| flag | environment | type | default | description |",
                "|---|---|---|---|---|"]
        subs = []
        for row in parse_help(text):
            if row["type"] == "subcommand":
                subs.append(row)
                continue
            if row["flag"] == "--help":
                continue
            typ, default = split_type(row["type"])
            desc = row["desc"] + (f" (not with {row['excludes']})" if row["excludes"] else "")
            env = f"`{row['env']}`" if row["env"] else ""
            out.append(f"| `{row['flag']}` | {env} | {cell(typ)} | {('`' + cell(default) + '`') if default else ''} "
                       f"| {cell(desc)} |")
        if subs:
            out += ["", "Commands:", ""]
            out += [f"- `{s['flag']}`: {s['desc']}" for s in subs]
        out.append("")
    if example is None:
        example = EXAMPLE.read_text()
    out += ["## userkey-lb config file (TOML)", "",
            "Every key, with its default, as in `docker/lb.example.toml`. Unknown keys are errors.",
            "SIGHUP rereads the file (flags and environment variables keep the values they had at",
            "start, on top of it); which keys it applies and which need a restart is in the",
            "file's header below and in [operations.md](operations.md#reload-sighup).", "",
            "```toml", example.rstrip("\n"), "```", ""]
    return "\n".join(out)


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 2
    files = generated_files(sys.argv[1])
    doc = render(sys.argv[1], files[EXAMPLE])
    files[DOC] = doc
    if "--write" in sys.argv:
        for path, text in files.items():
            if path.read_text() != text:
                path.write_text(text)
        return 0
    if "--check" in sys.argv:
        stale = [str(path.relative_to(ROOT)) for path, text in files.items() if path.read_text() != text]
        if stale:
            print(f"out of date: {', '.join(stale)}: run scripts/gen-configuration-doc.py build/apps --write")
            return 1
        print("docs/configuration.md matches the apps' --help; the reload lists in docs/operations.md and "
              "docker/lb.example.toml match the settings table")
        return 0
    print(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
