#!/usr/bin/env python3
"""Keeps the workspace's `rust-version` honest: it must equal the highest `rust-version` that a
locked dependency declares (for this host's platform), so that `cargo install` without
`--locked` and users on older toolchains get the truth. Our own code's use of newer std APIs is
checked by clippy's `incompatible_msrv` lint, which reads the same field.

    python3 scripts/check-msrv.py        (run by scripts/test.sh)
"""
import json
import subprocess
import sys


def version(text: str) -> tuple[int, ...]:
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def show(v: tuple[int, ...]) -> str:
    return ".".join(map(str, v[:2] if v[2] == 0 else v))


host = next(
    line.split(": ", 1)[1]
    for line in subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout.splitlines()
    if line.startswith("host: ")
)
meta = json.loads(
    subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--filter-platform", host],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
)
members = set(meta["workspace_members"])
resolved = {node["id"] for node in meta["resolve"]["nodes"]}
ours = {p["name"]: p.get("rust_version") for p in meta["packages"] if p["id"] in members}
deps = sorted(
    (version(p["rust_version"]), p["name"], p["version"])
    for p in meta["packages"]
    if p["id"] not in members and p["id"] in resolved and p.get("rust_version")
)
if not deps:
    sys.exit("check-msrv: no dependency declares a rust-version; nothing to compare")
need, name, ver = deps[-1]
bad = False
for crate, declared in sorted(ours.items()):
    if declared is None:
        print(f"check-msrv: {crate} declares no rust-version (use rust-version.workspace = true)")
        bad = True
    elif version(declared) < need:
        print(f"check-msrv: {crate} claims rust-version {declared}, but {name} {ver} needs {show(need)}")
        bad = True
    elif version(declared) > need:
        print(
            f"check-msrv: {crate} claims rust-version {declared}, higher than any locked dependency "
            f"needs ({show(need)}, {name} {ver}); lower it, or say in Cargo.toml why our code needs more"
        )
        bad = True
if bad:
    sys.exit(1)
print(f"check-msrv: rust-version {show(need)} holds ({name} {ver} sets it; {len(deps)} dependencies checked)")
