"""Fleet benchmark of cm-baseline against the emulator (run through `scripts/bench`).

Starts its own emulator on a free 127.0.0.1 port, creates an Organization with N member
accounts (each with R active regions, through the `/cm-emulator/regions` hook), writes a
desired-state copy with one account file per account, then measures three phases with the
given (release) binary:

  a. `apply --initial` on the fresh fleet;
  b. `plan` on the converged fleet (maintenance; must show no changes);
  c. `apply` (maintenance) after drifting a share of the accounts through boto3.

Latency and throttling (`/cm-emulator/faults`) are on during the measured phases only. Per
phase: wall time, API calls (total, per account-region, by service and by operation), retries,
throttled attempts and the peak RSS of the cm-baseline process, plus the emulator's own count
of the requests it received per account, region and operation. Prints one table and writes
every figure as JSON (`--out`). See docs/benchmark.md. Test support only.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3
from botocore.config import Config

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stackset  # noqa: E402

HERE = Path(__file__).resolve().parent
HOME = "ap-northeast-1"
# The home region first, then the regions the brief names, then more for R > 4.
REGIONS = [HOME, "us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-southeast-2",
           "ap-northeast-2", "ca-central-1", "sa-east-1", "eu-west-2", "eu-north-1", "ap-south-1", "us-east-2",
           "us-west-1", "eu-west-3", "ap-northeast-3"]
MANAGEMENT = "123456789012"  # moto's default account: the credentials cm-baseline runs with
# Services whose calls are account-wide: counted per account, not per account-region.
GLOBAL_SERVICES = {"iam", "organizations", "sts"}
MEMBER_ROLE = "cm-policymaintainer"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- emulator



def process_cpu_seconds(proc):
    """CPU time (user + system) a child process has used so far."""
    try:
        fields = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def stop_process(proc):
    """Stops a child process: SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()

class Emulator:
    def __init__(self, workdir):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / "emulator.log"
        out = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "server.py"), "--host", "127.0.0.1", "--port", str(self.port)],
                                     stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise SystemExit(f"emulator did not start; see {self.log_path}")
                time.sleep(0.1)
        self.creds = {}
        self.creds_lock = threading.Lock()

    def cpu_seconds(self):
        """CPU time (user + system) the emulator process has used so far."""
        return process_cpu_seconds(self.proc)

    def stop(self):
        stop_process(self.proc)

    def hook(self, path, doc=None):
        data = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(self.url + path, data=data, method="POST" if doc is not None else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    def client(self, service, account=MANAGEMENT, region=HOME):
        base = dict(endpoint_url=self.url, region_name=region, aws_access_key_id="testing", aws_secret_access_key="testing")
        if account != MANAGEMENT:
            with self.creds_lock:
                c = self.creds.get(account)
            if c is None:
                sts = boto3.client("sts", **base)
                c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/{MEMBER_ROLE}", RoleSessionName="cm-bench")["Credentials"]
                with self.creds_lock:
                    self.creds[account] = c
            base.update(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
        cfg = Config(s3={"addressing_style": "path"}, retries={"mode": "standard", "total_max_attempts": 3})
        return boto3.client(service, config=cfg, **base)


# ---------------------------------------------------------------- setup


def spread(n, share):
    """Indices of round(n * share) of range(n), evenly spread (deterministic)."""
    k = round(n * share)
    if share > 0 and k == 0:
        k = 1
    return sorted({int(i * n / k) for i in range(k)}) if k else []


def setup(emu, args, workdir, repo):
    timings = {}
    t0 = time.monotonic()
    emu.client("organizations").create_organization(FeatureSet="ALL")
    timings["organization_s"] = time.monotonic() - t0

    def create(i):
        t = time.monotonic()
        out = emu.client("organizations").create_account(Email=f"bench-{i:05d}@example.com", AccountName=f"bench-{i:05d}")
        return out["CreateAccountStatus"]["AccountId"], time.monotonic() - t

    t = time.monotonic()
    with ThreadPoolExecutor(args.setup_workers) as pool:
        created = list(pool.map(create, range(args.accounts)))
    accounts = [a for a, _ in created]
    timings["create_accounts_s"] = time.monotonic() - t
    timings["create_account_call_s"] = {"min": min(d for _, d in created), "max": max(d for _, d in created),
                                        "mean": sum(d for _, d in created) / len(created)}

    # The operator's StackSet makes the member role in every account before the first run;
    # from then on the emulator refuses AssumeRole into a role nobody made, as AWS does.
    t = time.monotonic()
    stackset.deploy(emu.url, accounts, workers=args.setup_workers)
    timings["stackset_s"] = time.monotonic() - t

    regions = REGIONS[:args.regions]
    t = time.monotonic()
    for a in accounts:
        emu.hook("/cm-emulator/regions", {"account_id": a, "regions": regions})
    timings["regions_hook_s"] = time.monotonic() - t

    # moto builds an account's backends lazily on first use: EC2's (default VPC, subnets,
    # security group) per region is the costly one. Touch them now, so that the measured
    # phases time cm-baseline and the emulator's answers, not moto's first-use set-up.
    def warm(a):
        for r in regions:
            emu.client("ec2", a, r).describe_vpcs()
        emu.client("iam", a).get_account_summary()

    t = time.monotonic()
    if not args.no_warm:
        with ThreadPoolExecutor(args.setup_workers) as pool:
            list(pool.map(warm, accounts))
    timings["warm_backends_s"] = time.monotonic() - t

    desired = workdir / "desired-state"
    if desired.exists():
        shutil.rmtree(desired)
    shutil.copytree(repo / "desired-state", desired)
    for f in (desired / "accounts").glob("*.yaml"):
        f.unlink()
    secure = set(spread(len(accounts), args.secure_share))
    tiers = {}
    opt_in = [f.strip() for f in args.basic_opt_in.split(",") if f.strip()]
    for i, a in enumerate(accounts):
        tier = "secure" if i in secure else "basic"
        tiers[a] = tier
        text = f'account_id: "{a}"\nname: bench-{i:05d}\ntier: {tier}\n'
        if tier == "basic" and opt_in:
            text += "opt_in:\n" + "".join(f"  {f}: true\n" for f in opt_in)
        (desired / "accounts" / f"{a}.yaml").write_text(text)
    timings["total_s"] = time.monotonic() - t0
    timings["per_account_s"] = timings["total_s"] / len(accounts)
    return accounts, regions, tiers, desired, timings


# ---------------------------------------------------------------- drift


def drift(emu, accounts, tiers, share, basic_opt_in):
    """Drifts a share of the accounts in a few features that maintenance keeps (secure: every
    feature; basic: those opted in); returns what was done per account."""
    done = {}
    for i in spread(len(accounts), share):
        a = accounts[i]
        kept = lambda f: tiers[a] == "secure" or f in basic_opt_in  # noqa: E731
        what = []
        if kept("F03"):
            emu.client("iam", a).update_account_password_policy(MinimumPasswordLength=6, AllowUsersToChangePassword=True)
            what.append("F03 password policy: minimum length 6, symbols no longer required")
        if kept("F07"):
            emu.client("cloudtrail", a).stop_logging(Name="Members")
            what.append("F07 trail Members: logging stopped")
        if tiers[a] == "secure":
            gd = emu.client("guardduty", a)
            for det in gd.list_detectors()["DetectorIds"]:
                gd.update_detector(DetectorId=det, Features=[{"Name": "S3_DATA_EVENTS", "Status": "DISABLED"}])
            what.append(f"F12 GuardDuty in {HOME}: S3_DATA_EVENTS disabled")
        if what:
            done[a] = what
    return done


# ---------------------------------------------------------------- one measured phase


def gnu_time():
    for path in ("/usr/bin/time",):
        if os.access(path, os.X_OK):
            try:
                out = subprocess.run([path, "-f", "%M", "true"], capture_output=True, text=True, timeout=10)
                if out.returncode == 0 and out.stderr.strip().isdigit():
                    return path
            except (OSError, subprocess.TimeoutExpired):
                pass
    return None


def tree_memory_kb(root):
    """(RSS, PSS) in kB summed over `root` and every descendant alive now (/proc). RSS counts
    pages shared between forked workers once per process; PSS divides each shared page
    among the processes that map it, so the PSS sum is what the tree takes."""
    pids, rss, pss = [root], 0, 0
    while pids:
        pid = pids.pop()
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
            for task in os.listdir(f"/proc/{pid}/task"):
                pids.extend(int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split())
        except (OSError, ValueError):
            pass
    return rss, pss


def measure(argv, env, emu, faults, stem, workdir, rss="auto", timeout=None, tree=False):
    """Runs `argv` (under GNU time when installed and `rss` is auto) with `faults` set on the
    emulator; returns exit code, wall time, peak RSS (GNU time %M: the largest of the process
    and its reaped descendants, one process at a time; else polled VmHWM), CPU seconds of the
    process and its descendants, the emulator's CPU seconds and what its faults hook counted.
    With `tree`, also the peaks of the RSS and PSS summed over the process tree, polled every
    0.2 s (for a tool that forks workers). With `timeout` (seconds), a run still going then is
    killed with its process group."""
    rss_file = workdir / f"{stem}.rss"
    timer = gnu_time() if rss != "proc" else None
    if timer:
        argv = [timer, "-f", "%M %U %S", "-o", str(rss_file), *argv]
    emu.hook("/cm-emulator/faults", faults)
    peak_kb, cpu_s, tree_rss, tree_pss = 0, None, 0, 0
    emu_cpu = emu.cpu_seconds()
    with open(workdir / f"{stem}.log", "wb") as err, open(workdir / f"{stem}.stdout", "wb") as out:
        t = time.monotonic()
        proc = subprocess.Popen([str(a) for a in argv], stdout=out, stderr=err, env=env, stdin=subprocess.DEVNULL,
                                start_new_session=timeout is not None)
        deadline = None if timeout is None else t + timeout
        if not timer or timeout is not None or tree:  # poll what the kernel keeps of the process (tree)
            while proc.poll() is None:
                if deadline is not None and time.monotonic() > deadline:
                    os.killpg(proc.pid, 9)
                    break
                if tree:
                    r, p = tree_memory_kb(proc.pid)
                    tree_rss, tree_pss = max(tree_rss, r), max(tree_pss, p)
                if not timer:
                    try:
                        for line in open(f"/proc/{proc.pid}/status"):
                            if line.startswith("VmHWM:"):
                                peak_kb = max(peak_kb, int(line.split()[1]))
                    except OSError:
                        pass
                time.sleep(0.2 if tree else 0.05)
        code = proc.wait()
        timed_out = deadline is not None and time.monotonic() > deadline
        wall = time.monotonic() - t
    emu_cpu = emu.cpu_seconds() - emu_cpu
    served = emu.hook("/cm-emulator/faults")
    emu.hook("/cm-emulator/faults", {})
    if timer:
        try:
            fields = rss_file.read_text().strip().splitlines()[-1].split()
            peak_kb, cpu_s = int(fields[0]), float(fields[1]) + float(fields[2])
        except (OSError, ValueError, IndexError):
            peak_kb = 0
    out = {"code": code, "timed_out": timed_out, "wall_s": wall, "peak_rss_kb": peak_kb, "cpu_s": cpu_s,
           "emulator_cpu_s": emu_cpu, "rss_source": "GNU time %M" if timer else "/proc VmHWM", "served": served}
    if tree:
        out.update(tree_rss_kb=tree_rss, tree_pss_kb=tree_pss)
    return out


def run_phase(name, command, emu, args, desired, workdir, faults, timeout=None, extra_env=None, state=None, tree=False):
    """Runs one cm-baseline command with `faults` set on the emulator. With `timeout`
    (seconds), a run still going then is killed (with its process group) and reported as
    having no report; without it the run may take as long as it takes. `extra_env`:
    environment variables of this run only, set over the emulator's (a service's own endpoint,
    `AWS_ENDPOINT_URL_<SERVICE>`, say). `tree`: see measure()."""
    stem = "-".join("".join(c if c.isalnum() else " " for c in name).split())  # "a apply --initial" -> "a-apply-initial"
    report_path = workdir / f"{stem}.json"
    argv = [args.binary, "--desired-state", str(desired), "--log-format", "json", *command,
            "--format", "json", "--out", str(report_path),
            "--parallel-accounts", str(args.parallel_accounts), "--max-calls", str(args.max_calls),
            "--account-calls", str(args.account_calls), "--max-attempts", str(args.max_attempts)]
    env = emulator_env(emu)
    env.update(AWS_REGION=HOME, NO_COLOR="1", CM_LOG=os.environ.get("CM_LOG", "warn"),
               CM_STATE_DIR=str(state or workdir / "state"))
    env.update(extra_env or {})
    log(f"== {name}: cm-baseline {' '.join(command)}" + "".join(f"; {k}={v}" for k, v in (extra_env or {}).items()))
    raw = measure(argv, env, emu, faults, stem, workdir, rss=args.rss, timeout=timeout, tree=tree)
    try:
        report = json.loads(report_path.read_text())
    except (OSError, ValueError):
        tail = (workdir / f"{stem}.log").read_text(errors="replace")[-3000:]
        why = f"killed after {timeout} s" if raw["timed_out"] else f"exit {raw['code']}"
        raise SystemExit(f"{name}: no JSON report ({why}); stderr:\n{tail}")
    return {**raw, "report": report, "report_path": str(report_path)}


def emulator_env(emu):
    """This process's environment without its AWS settings, pointed at the emulator with
    the management account's (dummy) credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ENDPOINT_URL=emu.url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    return env


# ---------------------------------------------------------------- figures


def summarize(name, command, raw, n, r, expect, latency_ms, concurrency):
    rep, calls = raw["report"], raw["report"]["api_calls"]
    cells = n * r
    statuses = defaultdict(int)
    for a in rep["accounts"]:
        statuses[a["status"]] += 1
    changes = sum(len(a.get("changes", [])) for a in rep["accounts"])
    failed = {a["account_id"]: a.get("error") for a in rep["accounts"] if a["status"] == "failed"}
    # The emulator's count per member account, region and operation of the requests it let
    # through (throttled attempts aside, so that a retry does not look like a second read).
    cell = defaultdict(lambda: defaultdict(int))  # "service:Op" -> (account, region) -> requests
    identical = defaultdict(int)  # "service:Op" -> requests repeating an earlier one byte for byte
    management = defaultdict(int)
    for row in raw["served"].get("by_operation", []):
        op = f"{row['service']}:{row['operation']}"
        served = row["requests"] - row["throttled"]
        if row["account"] == MANAGEMENT:
            management[op] += served
        else:
            key = (row["account"], "global" if row["service"] in GLOBAL_SERVICES else row["region"])
            cell[op][key] += served
            identical[op] += row.get("identical", 0)
    per_cell = {}
    for op, counts in sorted(cell.items()):
        values = list(counts.values())
        scope = "account" if op.split(":")[0] in GLOBAL_SERVICES else "account-region"
        per_cell[op] = {"scope": scope, "cells": len(values), "min": min(values), "max": max(values),
                        "mean": round(sum(values) / len(values), 3), "total": sum(values), "identical": identical[op]}
    out = {
        "phase": name,
        "command": " ".join(command),
        "exit_code": raw["code"],
        "expected": expect,
        "wall_s": round(raw["wall_s"], 3),
        "peak_rss_mb": round(raw["peak_rss_kb"] / 1024, 1),
        # CPU seconds of cm-baseline (GNU time %U + %S) and of the emulator during the phase:
        # an emulator busy most of the wall time is the bottleneck, not cm-baseline
        "cpu_s": raw["cpu_s"],
        # the figure the tool's own cost is judged by: its CPU time over the calls it made
        "cpu_ms_per_call": round(1000 * raw["cpu_s"] / calls["total"], 4) if raw["cpu_s"] is not None and calls["total"] else None,
        "emulator_cpu_s": round(raw["emulator_cpu_s"], 2),
        "peak_rss_source": raw["rss_source"],
        "accounts_by_status": dict(statuses),
        "changes": changes,
        "failed_accounts": failed,
        "api_calls": {k: calls.get(k, 0) for k in ("total", "errors", "not_found", "retries", "throttled", "paced")},
        "calls_per_account_region": round(calls["total"] / cells, 3),
        "calls_per_account": round(calls["total"] / n, 3),
        # requests (attempts) the emulator received x latency / wall: calls in flight on average
        "mean_in_flight": round(raw["served"].get("requests", 0) * latency_ms / 1000 / raw["wall_s"], 2) if latency_ms else None,
        # the wall time if C calls were in flight all the time: requests x latency / C
        "latency_bound_s": round(raw["served"].get("requests", 0) * latency_ms / 1000 / concurrency, 3) if latency_ms else None,
        "by_service": calls["by_service"],
        "by_service_per_account_region": {k: round(v / cells, 3) for k, v in sorted(calls["by_service"].items())},
        "by_operation": calls["by_operation"],
        "by_operation_per_account_region": {k: round(v / cells, 3) for k, v in sorted(calls["by_operation"].items())},
        "emulator": {k: raw["served"].get(k) for k in ("requests", "delayed", "throttled", "unidentified", "throttled_by_code")},
        "emulator_requests_per_cell": per_cell,
        "emulator_management_requests": dict(sorted(management.items())),
        "report": raw["report_path"],
    }
    out["repeated_operations"] = {op: v for op, v in per_cell.items() if v["max"] > 1}
    return out


def table(phases, server="emulator"):
    head = ["phase", "wall s", "calls", "calls per account-region", "retries", "throttled", "held by pacing",
            "peak RSS MB", "CPU s", "CPU ms per call", f"{server} CPU s"]
    rows = [[p["phase"], f"{p['wall_s']:.2f}", str(p["api_calls"]["total"]), f"{p['calls_per_account_region']:.1f}",
             str(p["api_calls"]["retries"]), str(p["api_calls"]["throttled"]), str(p["api_calls"]["paced"]),
             f"{p['peak_rss_mb']:.1f}",
             "-" if p["cpu_s"] is None else f"{p['cpu_s']:.2f}",
             "-" if p["cpu_ms_per_call"] is None else f"{p['cpu_ms_per_call']:.3f}", f"{p['emulator_cpu_s']:.2f}"] for p in phases]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), sep, *(line(r) for r in rows)])


# ---------------------------------------------------------------- projection

PROJECT_ACCOUNTS = (1000, 5000, 10000)
PROJECT_REGIONS = 17
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def maintenance_window(desired):
    """(seconds, text) of `daemon.window` in settings.yaml; the product's default is Saturday
    02:00 to Sunday 23:59 (src/daemon/schedule.rs), both minutes included."""
    import yaml
    win = {"from": "Sat 02:00", "to": "Sun 23:59"}
    try:
        doc = yaml.safe_load((desired / "settings.yaml").read_text()) or {}
        win.update(((doc.get("daemon") or {}).get("window")) or {})
    except (OSError, ValueError, yaml.YAMLError):
        pass

    def minute(text):
        day, hm = text.split()
        h, m = hm.split(":")
        return DAYS.index(day.lower()[:3]) * 1440 + int(h) * 60 + int(m)

    return ((minute(win["to"]) - minute(win["from"])) % (7 * 1440) + 1) * 60, f"{win['from']} to {win['to']}"


def pacing_rates(repo):
    """The product's pacing table (src/aws/pacing.rs): {"service:Operation": (per second, burst)}."""
    import re
    text = (repo / "src/aws/pacing.rs").read_text()
    return {op: (float(rate), float(burst)) for op, rate, burst in re.findall(r'\("([a-z0-9]+:\w+)", ([\d.]+), ([\d.]+)\)', text)}


def task_vcpus(repo):
    """vCPUs of the ECS task definition the product ships (deploy/ecs/task-definition.json)."""
    try:
        return int(json.loads((repo / "deploy/ecs/task-definition.json").read_text())["cpu"]) / 1024
    except (OSError, ValueError, KeyError):
        return 1.0


def projection(phases, n, r, args, repo, desired):
    """The weekend maintenance run for PROJECT_ACCOUNTS x PROJECT_REGIONS, from the measured
    calls per account and CPU per call of the converged plan (b) and the maintenance apply
    (c), at --project-latency-ms per call, the default limits, AWS's rates of the pacing
    table, and one ECS task's vCPUs per shard. See docs/benchmark.md for the assumptions."""
    by = {p["phase"][0]: p for p in phases}
    if "b" not in by:
        return None
    window_s, window_text = maintenance_window(desired)
    rates = pacing_rates(repo)
    vcpus = task_vcpus(repo)
    lat = args.project_latency_ms / 1000

    def per_account(p):
        """Calls per account at PROJECT_REGIONS: account-wide calls once, the rest per region."""
        glob = sum(v for k, v in p["by_service"].items() if k in GLOBAL_SERVICES) / n
        return glob + (p["calls_per_account"] - glob) * PROJECT_REGIONS / r

    def paced_floor(p):
        """Seconds one account needs at least, keeping to the paced operations' rates (each
        account and region has its own buckets; the busiest account-region counts)."""
        floor = 0.0
        for op, (rate, burst) in rates.items():
            cell = p["emulator_requests_per_cell"].get(op)
            most = cell["max"] if cell else p["by_operation"].get(op, 0) / (n * r)
            floor = max(floor, max(0.0, most - burst) / rate)
        return floor

    steps = [by["b"]] + ([by["c"]] if "c" in by else [by["b"]])  # the brake's plan, then the apply
    calls_per_account = sum(per_account(p) for p in steps)
    cpu_ms = max((p["cpu_ms_per_call"] or 0) for p in steps)
    floor = sum(paced_floor(p) for p in steps)
    c = min(args.max_calls, args.parallel_accounts * args.account_calls)
    rows = []
    for accounts in PROJECT_ACCOUNTS:
        calls = calls_per_account * accounts
        latency_s = calls * lat / c
        cpu_s = calls * cpu_ms / 1000 / vcpus
        paced_s = -(-accounts // args.parallel_accounts) * floor
        wall = max(latency_s, cpu_s, paced_s)
        rows.append({"accounts": accounts, "regions": PROJECT_REGIONS, "calls": round(calls),
                     "latency_bound_h": round(latency_s / 3600, 2), "cpu_bound_h": round(cpu_s / 3600, 2),
                     "pacing_floor_h": round(paced_s / 3600, 3), "one_shard_h": round(wall / 3600, 2),
                     "bound_by": "latency" if wall == latency_s else "cpu" if wall == cpu_s else "pacing",
                     "shards": max(1, -(-int(wall) // int(window_s)))})
    return {"window": window_text, "window_h": round(window_s / 3600, 2), "latency_ms": args.project_latency_ms,
            "calls_in_flight": c, "vcpus_per_shard": vcpus, "cpu_ms_per_call": cpu_ms,
            "calls_per_account": round(calls_per_account, 1), "pacing_floor_per_account_s": round(floor, 2), "rows": rows}


def print_projection(proj):
    print()
    print(f"Projected weekend maintenance (brake plan + apply) at {PROJECT_REGIONS} regions, {proj['latency_ms']:g} ms per call, "
          f"{proj['calls_in_flight']} calls in flight, {proj['vcpus_per_shard']:g} vCPU per shard at {proj['cpu_ms_per_call']:.3f} ms "
          f"CPU per call, window {proj['window']} ({proj['window_h']:g} h); {proj['calls_per_account']:g} calls per account:")
    head = ["accounts", "calls", "latency-bound h", "CPU-bound h", "pacing floor h", "one shard h", "bound by", "shards"]
    rows = [[f"{x['accounts']:,} x {x['regions']}", f"{x['calls']:,}", f"{x['latency_bound_h']:.2f}", f"{x['cpu_bound_h']:.2f}",
             f"{x['pacing_floor_h']:.3f}", f"{x['one_shard_h']:.2f}", x["bound_by"], str(x["shards"])] for x in proj["rows"]]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |")


# ---------------------------------------------------------------- replay


class Endpoint:
    """A test-support server run for the benchmark that prints "listening on http://ADDR"
    once ready: the recording proxy (record.py) or the replay server."""

    def __init__(self, argv, log_path):
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=self.log)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("listening on "):
            self.stop()
            raise SystemExit(f"{argv[0]} did not start; see {log_path}")
        self.url = line.split()[-1]

    def cpu_seconds(self):
        return process_cpu_seconds(self.proc)

    def stop(self):
        stop_process(self.proc)


class ReplayEndpoint(Endpoint):
    """The replay server (tests/support/replay/main.rs), with what run_phase asks of the
    emulator: `hook` of the faults (the latency is the server's own, set at start) and the
    count of requests served since the last POST."""

    def __init__(self, argv, log_path):
        super().__init__(argv, log_path)
        self.base, self.base_held = 0, 0

    def stats(self):
        with urllib.request.urlopen(self.url + "/replay/stats", timeout=60) as r:
            return json.loads(r.read())

    def hook(self, path, doc=None):
        st = self.stats()
        if doc is not None:
            self.base, self.base_held = st["requests"], st.get("held_us", 0)
            return {}
        return {"requests": st["requests"] - self.base, "misses": st["misses"], "miss_examples": st["miss_examples"],
                "held_us": st.get("held_us", 0) - self.base_held, "by_operation": [],
                "arrivals_per_100ms": st.get("arrivals_per_100ms", [])}


def timeline(arrivals, c, latency_ms):
    """From the replay's arrivals per 100 ms (its first request on): the span from the first
    request to the last, the median rate of the whole seconds between the first and the last
    (the steady state), that rate against C / L, and how long the last 1 % of requests took."""
    if not arrivals or not latency_ms:
        return None
    seconds = [sum(arrivals[i:i + 10]) for i in range(0, len(arrivals), 10)]
    inner = sorted(seconds[1:-1]) or sorted(seconds)
    steady = inner[len(inner) // 2]
    total, done, t99 = sum(arrivals), 0, 0
    for i, n in enumerate(arrivals):
        done += n
        if done >= 0.99 * total:
            t99 = i + 1
            break
    bound = c * 1000 / latency_ms
    return {"span_s": round(len(arrivals) / 10, 1), "steady_calls_per_s": steady, "bound_calls_per_s": round(bound),
            "steady_share": round(steady / bound, 3), "last_percent_s": round((len(arrivals) - t99) / 10, 1)}


def record_templates(emu, args, workdir, repo):
    """Sets up two template accounts (one secure, one basic) at R regions, converges them
    (apply --initial), and records the emulator's answers to their converged plan through
    record.py. Returns (recording, templates {id: tier}, regions, desired, timings)."""
    targs = argparse.Namespace(**{**vars(args), "accounts": 2, "secure_share": 0.5})
    accounts, regions, tiers, desired, setup_t = setup(emu, targs, workdir, repo)
    raw = run_phase("template apply --initial", ["apply", "--initial"], emu, targs, desired, workdir, {})
    if raw["code"] != 0:
        raise SystemExit(f"template apply --initial: exit {raw['code']}; see {workdir}")
    recording = workdir / "recording.jsonl"
    proxy = Endpoint([sys.executable, repo / "tests/support/replay/record.py", "--upstream", emu.url, "--out", recording],
                     workdir / "record.log")
    try:
        via = argparse.Namespace(url=proxy.url, hook=emu.hook, cpu_seconds=emu.cpu_seconds)
        raw = run_phase("template plan (recorded)", ["plan", "--detailed-exitcode"], via, targs, desired, workdir, {})
    finally:
        proxy.stop()
    if raw["code"] != 0:
        raise SystemExit(f"recorded plan of the templates: exit {raw['code']} (not converged?); see {workdir}")
    return recording, tiers, regions, desired, setup_t


def replay_fleet(args, workdir, desired, templates):
    """A fleet of N accounts made of the templates: the replay's fleet file, one account file
    each, and the journal's records of each template copied to its accounts (what the
    template's apply --initial recorded: what we made, so that the plan owns it)."""
    import sqlite3
    secure_t = next(a for a, t in templates.items() if t == "secure")
    basic_t = next(a for a, t in templates.items() if t == "basic")
    secure = set(spread(args.accounts, args.secure_share))
    opt_in = [f.strip() for f in args.basic_opt_in.split(",") if f.strip()]
    fleet, tiers = [], {}
    for f in (desired / "accounts").glob("*.yaml"):
        f.unlink()
    for i in range(args.accounts):
        a = f"{800000000000 + i:012d}"
        tier = "secure" if i in secure else "basic"
        tiers[a] = tier
        fleet.append({"id": a, "name": f"bench-{i:05d}", "email": f"bench-{i:05d}@example.com",
                      "template": secure_t if tier == "secure" else basic_t})
        text = f'account_id: "{a}"\nname: bench-{i:05d}\ntier: {tier}\n'
        if tier == "basic" and opt_in:
            text += "opt_in:\n" + "".join(f"  {f}: true\n" for f in opt_in)
        (desired / "accounts" / f"{a}.yaml").write_text(text)
    fleet_path = workdir / "fleet.json"
    fleet_path.write_text(json.dumps({"accounts": fleet}))
    state = workdir / "replay-state"
    state.mkdir(exist_ok=True)
    shutil.copy(workdir / "state" / "journal.sqlite", state / "journal.sqlite")
    db = sqlite3.connect(state / "journal.sqlite")
    with db:
        for x in fleet:
            db.execute("INSERT OR REPLACE INTO records (account_id, kind, region, name, feature, how, at) "
                       "SELECT ?1, kind, region, replace(name, ?2, ?1), feature, how, at FROM records WHERE account_id = ?2",
                       (x["id"], x["template"]))
    db.close()
    return fleet_path, state, tiers


# ---------------------------------------------------------------- main


def finish(problems, out, workdir):
    """Prints each problem and where the figures and logs are; the driver's exit code."""
    for m in problems:
        print(f"PROBLEM: {m}")
    if out:
        print(f"\nfigures: {out}")
    print(f"reports and logs: {workdir}")
    return 1 if problems else 0


def main():
    p = argparse.ArgumentParser(prog="scripts/bench", description="Fleet benchmark of cm-baseline against the emulator (see docs/benchmark.md).")
    p.add_argument("--binary", required=True, help="the cm-baseline binary (scripts/bench passes its release build)")
    p.add_argument("--repo", default=str(HERE.parents[2]), help="the repository (for desired-state/)")
    p.add_argument("--cwd", default=os.getcwd(), help="relative --out and --workdir are taken from here (scripts/bench passes the caller's)")
    p.add_argument("--accounts", type=int, default=10, help="member accounts N (default 10)")
    p.add_argument("--regions", type=int, default=4, help=f"active regions per account R, 1 to {len(REGIONS)} (default 4)")
    p.add_argument("--latency-ms", type=float, default=0, help="latency of every AWS request in the measured phases (default 0)")
    p.add_argument("--throttle-share", type=float, default=0, help="share of AWS requests answered with throttling (default 0)")
    p.add_argument("--seed", type=int, default=1, help="seed of the throttling decisions (default 1)")
    p.add_argument("--secure-share", type=float, default=0.5, help="share of secure accounts, the rest basic (default 0.5)")
    p.add_argument("--drift-share", type=float, default=0.1, help="share of accounts drifted before phase c (default 0.1)")
    p.add_argument("--basic-opt-in", default="F03,F07", help="features basic accounts opt in to (default F03,F07; '' for none)")
    p.add_argument("--parallel-accounts", type=int, default=16)
    p.add_argument("--max-calls", type=int, default=32)
    p.add_argument("--account-calls", type=int, default=4)
    p.add_argument("--max-attempts", type=int, default=8)
    p.add_argument("--phases", default="abc",
                   help="phases to measure: a (apply --initial, always), b (converged plan), c (apply after drift); default abc")
    p.add_argument("--setup-workers", type=int, default=4, help="concurrent set-up requests (default 4)")
    p.add_argument("--no-warm", action="store_true", help="leave moto's per-account backends to be built during phase a")
    p.add_argument("--rss", choices=["auto", "proc"], default="auto",
                   help="peak RSS from GNU time %%M when installed (auto), or by polling /proc/<pid>/status VmHWM (proc)")
    p.add_argument("--project-latency-ms", type=float, default=50,
                   help="AWS latency per call the projection of the weekend run assumes (default 50)")
    p.add_argument("--replay", action="store_true",
                   help="measure the converged plan against the replay endpoint instead of the emulator: two template "
                        "accounts are converged and their plan recorded on the emulator, which then stops; N accounts "
                        "made of them are planned against the replay, with --latency-ms per call (phase b only)")
    p.add_argument("--replay-binary", help="the replay server (default: examples/replay beside --binary)")
    p.add_argument("--replay-threads", type=int, default=1, help="worker threads of the replay server (default 1)")
    p.add_argument("--workdir", help="where the desired state, reports and logs go (default: a new directory in /tmp)")
    p.add_argument("--out", help="write every figure as JSON to this file")
    args = p.parse_args()
    if not 1 <= args.regions <= len(REGIONS):
        p.error(f"--regions must be 1 to {len(REGIONS)}")
    if args.accounts < 1:
        p.error("--accounts must be at least 1")
    if args.latency_ms < 0:
        p.error("--latency-ms must not be negative")
    for name in ("throttle_share", "secure_share", "drift_share"):
        if not 0 <= getattr(args, name) <= 1:
            p.error(f"--{name.replace('_', '-')} must be from 0 to 1")
    cwd = Path(args.cwd)
    args.binary = str((cwd / args.binary).resolve())
    if args.out:
        args.out = str((cwd / args.out).resolve())
    repo = Path(args.repo).resolve()
    workdir = (cwd / args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="cm-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)

    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    try:
        source = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.TimeoutExpired):
        source = None
    if args.replay:
        return replay_main(args, repo, workdir, started, source)
    emu = Emulator(workdir)
    try:
        log(f"== Emulator at {emu.url}; work directory {workdir}")
        log(f"== Set-up: Organization with {args.accounts} member accounts, {args.regions} regions each")
        accounts, regions, tiers, desired, setup_t = setup(emu, args, workdir, repo)
        log(f"   set-up took {setup_t['total_s']:.1f} s ({setup_t['per_account_s']:.2f} s per account; "
            f"account creation {setup_t['create_accounts_s']:.1f} s, StackSet {setup_t['stackset_s']:.1f} s, warming {setup_t['warm_backends_s']:.1f} s)")
        faults = {"latency_ms": args.latency_ms, "throttle_share": args.throttle_share, "seed": args.seed, "tally": True}
        n, r = len(accounts), len(regions)
        phases, problems = [], []

        def phase(name, command, expect, check):
            raw = run_phase(name, command, emu, args, desired, workdir, faults)
            s = summarize(name, command, raw, n, r, expect, args.latency_ms,
                          min(args.max_calls, min(args.parallel_accounts, n) * args.account_calls))
            problems.extend(f"{name}: {m}" for m in check(s))
            phases.append(s)
            return s

        if "a" not in args.phases:
            raise SystemExit("--phases must include a: the other phases need a converged fleet")
        phase("a apply --initial", ["apply", "--initial"], "every account converged",
              lambda s: ([] if s["exit_code"] == 0 and s["accounts_by_status"].get("converged") == n
                         else [f"exit {s['exit_code']}, accounts {s['accounts_by_status']}, failed {s['failed_accounts']}"]))
        if "b" in args.phases:
            phase("b plan (converged)", ["plan", "--detailed-exitcode"], "no changes (exit 0)",
                  lambda s: ([] if s["exit_code"] == 0 and s["changes"] == 0
                             else [f"exit {s['exit_code']}, {s['changes']} changes, accounts {s['accounts_by_status']}"]))
        drifted, drift_s = {}, 0.0
        if "c" in args.phases:
            t = time.monotonic()
            drifted = drift(emu, accounts, tiers, args.drift_share, [f.strip() for f in args.basic_opt_in.split(",") if f.strip()])
            drift_s = time.monotonic() - t
            want = sum(len(v) for v in drifted.values())
            log(f"   drifted {len(drifted)} accounts ({want} features) in {drift_s:.1f} s")
            phase("c apply (after drift)", ["apply"], f"{want} changes, every account converged",
                  lambda s: ([] if s["exit_code"] == 0 and s["accounts_by_status"].get("converged") == n and s["changes"] == want
                             else [f"exit {s['exit_code']}, {s['changes']} changes (drifted {want}), accounts {s['accounts_by_status']}"]))
    finally:
        emu.stop()

    result = {
        "started": started,
        "source": source,  # git describe of the repository the binary was built from (scripts/bench builds it)
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": list(os.getloadavg())},
        "parameters": {"accounts": n, "regions": regions, "latency_ms": args.latency_ms, "throttle_share": args.throttle_share,
                       "seed": args.seed, "secure_share": args.secure_share, "secure_accounts": sum(t == "secure" for t in tiers.values()),
                       "drift_share": args.drift_share, "basic_opt_in": args.basic_opt_in, "parallel_accounts": args.parallel_accounts,
                       "max_calls": args.max_calls, "account_calls": args.account_calls, "max_attempts": args.max_attempts,
                       "binary": args.binary},
        "setup": {k: (round(v, 3) if isinstance(v, float) else {kk: round(vv, 3) for kk, vv in v.items()} if isinstance(v, dict) else v)
                  for k, v in setup_t.items()},
        "drift": {"accounts": drifted, "seconds": round(drift_s, 3)},
        "phases": phases,
        "projection": projection(phases, n, r, args, repo, desired),
        "problems": problems,
        "workdir": str(workdir),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"N={n} accounts ({result['parameters']['secure_accounts']} secure), R={r} regions, latency {args.latency_ms:g} ms, "
          f"throttle share {args.throttle_share:g}, --parallel-accounts {args.parallel_accounts} --max-calls {args.max_calls} "
          f"--account-calls {args.account_calls}")
    print(f"set-up {setup_t['total_s']:.1f} s ({setup_t['per_account_s']:.2f} s per account)")
    print()
    print(table(phases))
    if args.latency_ms:
        c = min(args.max_calls, min(args.parallel_accounts, n) * args.account_calls)
        print(f"latency bound, requests x latency / C (C = {c}): " +
              ", ".join(f"{p['phase'].split()[0]} {p['latency_bound_s']:.2f} s (wall {p['wall_s']:.2f} s, "
                        f"{100 * (p['wall_s'] / p['latency_bound_s'] - 1):+.0f} %)" for p in phases if p['latency_bound_s']))
        print("mean calls in flight (requests x latency / wall): " +
              ", ".join(f"{p['phase'].split()[0]} {p['mean_in_flight']:.1f}" for p in phases) +
              f"  (limit: min(--max-calls {args.max_calls}, accounts in parallel x --account-calls {args.account_calls})"
              f" = {min(args.max_calls, min(args.parallel_accounts, n) * args.account_calls)})")
    plan = phases[1] if len(phases) > 1 else None
    if plan and plan["repeated_operations"]:
        print()
        print("Converged plan: operations received more than once in an account-region (IAM, STS: per account),")
        print("with how many of those requests repeated an earlier one byte for byte (identical):")
        for op, v in sorted(plan["repeated_operations"].items(), key=lambda kv: (-kv[1]["identical"], -kv[1]["max"])):
            print(f"  {op:<52} {v['min']:>3}..{v['max']:<3} per {v['scope']:<14} mean {v['mean']:>6.2f}"
                  f"  identical {v['identical']:>4} of {v['total']}")
    if result["projection"]:
        print_projection(result["projection"])
    return finish(problems, args.out, workdir)


def replay_main(args, repo, workdir, started, source):
    """--replay: the converged plan of N accounts against the replay endpoint."""
    binary = Path(args.replay_binary) if args.replay_binary else Path(args.binary).parent / "examples" / "replay"
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"no replay server at {binary} (cargo build --release --example replay)")
    emu = Emulator(workdir)
    try:
        log(f"== Emulator at {emu.url}; recording two template accounts at {args.regions} regions; work directory {workdir}")
        recording, templates, regions, desired, setup_t = record_templates(emu, args, workdir, repo)
    finally:
        emu.stop()
    fleet_path, state, tiers = replay_fleet(args, workdir, desired, templates)
    n, r = args.accounts, len(regions)
    c = min(args.max_calls, min(args.parallel_accounts, n) * args.account_calls)
    server = ReplayEndpoint([binary, "--recording", recording, "--fleet", fleet_path, "--latency-ms", args.latency_ms,
                             "--threads", args.replay_threads], workdir / "replay.log")
    try:
        log(f"== Replay at {server.url}, {args.latency_ms:g} ms per request; N={n} accounts made of the templates")
        raw = run_phase("b plan (converged, replay)", ["plan", "--detailed-exitcode"], server, args, desired, workdir, {},
                        state=state)
        replay_cpu = server.cpu_seconds()
    finally:
        server.stop()
    s = summarize("b plan (converged, replay)", ["plan", "--detailed-exitcode"], raw, n, r, "no changes (exit 0), no replay miss",
                  args.latency_ms, c)
    s["replay"] = {"misses": raw["served"].get("misses"), "miss_examples": raw["served"].get("miss_examples"),
                   "server_cpu_s": round(replay_cpu, 2), "threads": args.replay_threads,
                   "mean_held_ms": round(raw["served"].get("held_us", 0) / 1000 / max(1, raw["served"].get("requests", 0)), 3),
                   "timeline": timeline(raw["served"].get("arrivals_per_100ms"), c, args.latency_ms)}
    s["emulator_cpu_s"] = s["replay"]["server_cpu_s"]
    problems = []
    if s["exit_code"] != 0 or s["changes"] != 0 or raw["served"].get("misses"):
        problems.append(f"exit {s['exit_code']}, {s['changes']} changes, {raw['served'].get('misses')} replay misses "
                        f"{raw['served'].get('miss_examples', [])[:3]}")
    proj = projection([s], n, r, args, repo, desired)
    result = {
        "started": started, "source": source, "mode": "replay",
        "machine": {"cpus": os.cpu_count(), "load_average_at_end": list(os.getloadavg())},
        "parameters": {"accounts": n, "regions": regions, "latency_ms": args.latency_ms, "secure_share": args.secure_share,
                       "secure_accounts": sum(t == "secure" for t in tiers.values()), "basic_opt_in": args.basic_opt_in,
                       "parallel_accounts": args.parallel_accounts, "max_calls": args.max_calls,
                       "account_calls": args.account_calls, "max_attempts": args.max_attempts, "binary": args.binary,
                       "replay_binary": str(binary), "templates": templates},
        "setup": {k: v for k, v in setup_t.items() if not isinstance(v, dict)},
        "phases": [s], "projection": proj, "problems": problems, "workdir": str(workdir),
    }
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"Replay: N={n} accounts ({result['parameters']['secure_accounts']} secure) made of two recorded templates, "
          f"R={r} regions, latency {args.latency_ms:g} ms, --parallel-accounts {args.parallel_accounts} --max-calls "
          f"{args.max_calls} --account-calls {args.account_calls} (C = {c})")
    print()
    print(table([s], server="replay"))
    if args.latency_ms:
        print(f"latency bound, requests x latency / C: {s['latency_bound_s']:.2f} s (wall {s['wall_s']:.2f} s, "
              f"{100 * (s['wall_s'] / s['latency_bound_s'] - 1):+.1f} %); mean calls in flight {s['mean_in_flight']:.1f} of {c}")
        print(f"the replay held each answer {s['replay']['mean_held_ms']:.2f} ms on average from its arrival "
              f"(latency {args.latency_ms:g} ms)")
        t = s["replay"]["timeline"]
        if t:
            print(f"the replay's timeline: {t['span_s']:.1f} s from the first request to the last; steady "
                  f"{t['steady_calls_per_s']} requests/s (median second), {100 * t['steady_share']:.1f} % of C / L = "
                  f"{t['bound_calls_per_s']}/s; the last 1 % of requests took {t['last_percent_s']:.1f} s")
    print_projection(proj)
    return finish(problems, args.out, workdir)


if __name__ == "__main__":
    sys.exit(main())
