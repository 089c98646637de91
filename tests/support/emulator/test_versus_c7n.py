"""Checks of the side-by-side benchmark's driver (versus_c7n.py) that need neither the
emulator nor Cloud Custodian: the memory of a process tree, the desired-state copy restricted
to the compared subset, and how the emulator's request tally is split.

Run: <emulator venv>/bin/python -m pytest -q tests/support/emulator
"""

import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench import MANAGEMENT, tree_memory_kb
from versus_c7n import SUBSET, requests_summary, restrict_desired_state

REPO = Path(__file__).resolve().parents[3]


def test_tree_memory_counts_forked_workers():
    # A parent that touches 64 MB, then forks two children that each touch 64 MB more.
    code = ("import os, time\nb = bytearray(64 << 20)\nfor _ in range(2):\n"
            "    if os.fork() == 0:\n        c = bytearray(64 << 20); time.sleep(3); os._exit(0)\n"
            "print('forked', flush=True)\ntime.sleep(3)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"forked"
        time.sleep(0.5)
        rss, pss = tree_memory_kb(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    # Each child's own 64 MB, plus the parent's shared with them: the sums see every process.
    assert pss >= 3 * 60 * 1024, pss
    assert rss >= pss


def test_desired_state_copy_enrolls_the_fleet_in_the_subset_only(tmp_path):
    desired = tmp_path / "desired-state"
    (desired / "accounts").mkdir(parents=True)
    (desired / "accounts" / "111111111111.yaml").write_text('account_id: "111111111111"\ntier: secure\n')
    restrict_desired_state(desired, ["222222222222", "333333333333"])
    tiers = yaml.safe_load((desired / "tiers.yaml").read_text())
    shipped = yaml.safe_load((REPO / "desired-state/tiers.yaml").read_text())
    assert tiers["basic"]["features"] == SUBSET
    assert tiers["secure"]["features"] == shipped["secure"]["features"]  # F07's per-tier entries name both
    files = sorted(p.name for p in (desired / "accounts").iterdir())
    assert files == ["222222222222.yaml", "333333333333.yaml"]
    account = yaml.safe_load((desired / "accounts" / "222222222222.yaml").read_text())
    assert account["tier"] == "basic" and account["opt_in"] == {f: True for f in SUBSET}


def test_requests_are_split_between_the_management_account_and_the_members():
    served = {"requests": 6, "throttled": 0, "by_operation": [
        {"account": MANAGEMENT, "region": "us-east-1", "service": "sts", "operation": "AssumeRole", "requests": 2},
        {"account": "222222222222", "region": "global", "service": "iam", "operation": "GetAccountPasswordPolicy", "requests": 1},
        {"account": "333333333333", "region": "ap-northeast-1", "service": "s3", "operation": "ListBuckets", "requests": 3}]}
    s = requests_summary(served, 2)
    assert (s["requests"], s["management"], s["member"], s["per_account"]) == (6, 2, 4, 3.0)
    assert s["by_service"] == {"iam": 1, "s3": 3}
    assert s["management_by_operation"] == {"sts:AssumeRole": 2}
