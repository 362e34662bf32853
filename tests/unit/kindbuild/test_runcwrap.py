"""The runc wrapper keeps capabilities inside the caller's bounding set, nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.kindbuild import runcwrap

NO_SYS_RESOURCE = ((1 << 41) - 1) & ~(1 << runcwrap.CAP_BIT["CAP_SYS_RESOURCE"])


def test_bounding_set_parsed() -> None:
    assert runcwrap.bounding_set("Name:\tx\nCapBnd:\t000001fffeffffff\n") == 0x1FFFEFFFFFF


def test_filter_drops_only_caps_outside_the_set() -> None:
    cfg = {
        "process": {
            "capabilities": {
                "bounding": ["CAP_CHOWN", "CAP_SYS_RESOURCE", "CAP_FUTURE_THING"],
                "effective": ["CAP_SYS_RESOURCE"],
            },
            "cwd": "/",
        },
        "root": {"path": "rootfs"},
    }
    out, dropped = runcwrap.filter_caps(cfg, NO_SYS_RESOURCE)
    assert dropped == ["CAP_SYS_RESOURCE"]
    assert out["process"]["capabilities"] == {
        "bounding": ["CAP_CHOWN", "CAP_FUTURE_THING"],
        "effective": [],
    }
    assert out["root"] == cfg["root"]
    assert runcwrap.filter_caps(cfg, (1 << 41) - 1)[1] == []


def test_script_rewrites_bundle_and_process_then_execs_runc(tmp_path: Path) -> None:
    fake_runc = tmp_path / "runc"
    fake_runc.write_text('#!/bin/sh\necho "$@" > "$(dirname "$0")/argv"\n')
    fake_runc.chmod(0o755)
    wrapper = tmp_path / "wrapper"
    wrapper.write_text(runcwrap.script(str(fake_runc), sys.executable))
    wrapper.chmod(0o755)
    bnd = runcwrap.bounding_set(Path("/proc/self/status").read_text())
    every = runcwrap.CAPS
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "config.json").write_text(
        json.dumps({"process": {"capabilities": {"bounding": every}}})
    )
    subprocess.run(
        [str(wrapper), "--root", "/x", "create", "--bundle", str(bundle), "id1"], check=True
    )
    kept = json.loads((bundle / "config.json").read_text())["process"]["capabilities"]["bounding"]
    assert kept == [c for c in every if bnd >> runcwrap.CAP_BIT[c] & 1]
    assert (tmp_path / "argv").read_text().split() == [
        "--root",
        "/x",
        "create",
        "--bundle",
        str(bundle),
        "id1",
    ]
    proc = tmp_path / "process.json"
    proc.write_text(json.dumps({"capabilities": {"effective": every}, "args": ["sh"]}))
    subprocess.run([str(wrapper), "exec", "--process", str(proc), "id1"], check=True)
    doc = json.loads(proc.read_text())
    assert doc["capabilities"]["effective"] == kept
    assert doc["args"] == ["sh"]
