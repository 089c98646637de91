"""cm-baseline side by side with Cloud Custodian's c7n-org (run through `scripts/bench-versus-c7n`).

One emulator, one Organization with two identical fleets of N member accounts in one region
(bench.py's set-up): one fleet for each tool, so that neither tool's first pass finds the
other's work done. Both enforce the same subset of the baseline, with each tool's default
parallelism:

  - cm-baseline: a desired-state copy whose `basic` tier is F03 (password policy), F07 (trail
    `Members` and its bucket), F11 (EBS default encryption), every account opted in to the
    three; first pass `apply --initial`, converged pass `plan` (must find nothing to do);
  - c7n-org: tests/support/c7n/policies.yml, an accounts file naming each account's member
    role; first pass and a second, converged pass (c7n's resource cache emptied in between,
    as it would have expired before the next scheduled run). c7n cannot create a trail or a
    bucket: the set-up makes a bare trail (not logging, one region, no digests) and its bucket
    (the CloudTrail statements only) in each of its accounts, as a StackSet would.

Per pass: wall time, the requests the emulator received (its tally: the same count for both
tools, by service and operation), CPU of the process and its children, and memory: GNU time's
%M (the largest single process) and the peaks of RSS and PSS summed over the process tree
(c7n-org forks workers). Checks afterwards, with boto3, that every account of both fleets
has the subset in place. See docs/benchmark.md. Test support only.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import HOME, MANAGEMENT, MEMBER_ROLE, Emulator, emulator_env, finish, log, measure, run_phase, setup  # noqa: E402
from faultmatrix import PASSWORD_POLICY  # noqa: E402  (F03's values)

HERE = Path(__file__).resolve().parent
SUBSET = ["F03", "F07", "F11"]


def bucket_name(account):
    return f"cm-members-cloudtrail-{account}"


def restrict_desired_state(desired, accounts):
    """The desired-state copy: the basic tier is the subset, and only `accounts` are enrolled."""
    (desired / "tiers.yaml").write_text(
        "# The benchmark's subset (scripts/bench-versus-c7n): what Cloud Custodian is compared on.\n"
        f"basic:\n  features: [{', '.join(SUBSET)}]\n  opt_in_default: false\n"
        "secure:\n  features: [F01, F02, F03, F04, F05, F06, F07, F08, F09, F10, F11, F12, F13, F14, F15]\n"
        "  opt_in_default: true\n")
    for f in (desired / "accounts").glob("*.yaml"):
        f.unlink()
    for i, a in enumerate(accounts):
        (desired / "accounts" / f"{a}.yaml").write_text(
            f'account_id: "{a}"\nname: cm-{i:05d}\ntier: basic\nopt_in:\n' + "".join(f"  {f}: true\n" for f in SUBSET))


def bare_trail(emu, account):
    """What c7n cannot make: the bucket (with the statements CloudTrail needs to write) and
    the trail `Members`, with AWS's defaults (one region, no digests, not logging)."""
    s3, name = emu.client("s3", account), bucket_name(account)
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": HOME})
    trail = f"arn:aws:cloudtrail:{HOME}:{account}:trail/Members"
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Sid": "AWSCloudTrailAclCheck", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:GetBucketAcl", "Resource": f"arn:aws:s3:::{name}",
         "Condition": {"StringEquals": {"aws:SourceArn": trail}}},
        {"Sid": "AWSCloudTrailWrite", "Effect": "Allow", "Principal": {"Service": "cloudtrail.amazonaws.com"},
         "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{name}/AWSLogs/{account}/*",
         "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail}}}]}))
    ct = emu.client("cloudtrail", account)
    ct.create_trail(Name="Members", S3BucketName=name)
    # AWS answers GetEventSelectors of a new trail with its default selector (management
    # events, read and write); moto with none, which c7n's check would take for a trail
    # that logs no management events. Written here so that the emulator answers as AWS.
    ct.put_event_selectors(TrailName="Members", EventSelectors=[
        {"ReadWriteType": "All", "IncludeManagementEvents": True, "DataResources": []}])


def check_subset(emu, account, cm):
    """What is missing of the subset in `account` (empty: in place). `cm`: cm-baseline's
    fleet, which also has Object Lock on the bucket."""
    missing = []
    iam, ec2, ct, s3 = (emu.client(s, account) for s in ("iam", "ec2", "cloudtrail", "s3"))
    try:
        pp = iam.get_account_password_policy()["PasswordPolicy"]
        missing += [f"password {k}" for k, v in PASSWORD_POLICY.items() if pp.get(k) != v]
    except iam.exceptions.NoSuchEntityException:
        missing.append("password policy")
    if not ec2.get_ebs_encryption_by_default()["EbsEncryptionByDefault"]:
        missing.append("EBS default encryption")
    trails = [t for t in ct.describe_trails()["trailList"] if t["Name"] == "Members"]
    if not trails:
        return missing + ["trail"]
    t = trails[0]
    missing += [k for k in ("IsMultiRegionTrail", "IncludeGlobalServiceEvents", "LogFileValidationEnabled") if not t.get(k)]
    if not ct.get_trail_status(Name="Members")["IsLogging"]:
        missing.append("trail logging")
    name = bucket_name(account)
    if s3.get_bucket_versioning(Bucket=name).get("Status") != "Enabled":
        missing.append("bucket versioning")
    try:
        pab = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        if not all(pab.values()):
            missing.append("bucket public access block")
    except s3.exceptions.ClientError:
        missing.append("bucket public access block")
    if "DenyInsecureTransport" not in s3.get_bucket_policy(Bucket=name)["Policy"]:
        missing.append("bucket policy DenyInsecureTransport")
    if cm and s3.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"].get("ObjectLockEnabled") != "Enabled":
        missing.append("bucket Object Lock")
    return missing


def requests_summary(served, n):
    """The emulator's count of the requests it received during a pass: total, management
    account's, and by service and by operation of the member accounts."""
    by_service, by_op, management = Counter(), Counter(), Counter()
    for row in served.get("by_operation", []):
        if row["account"] == MANAGEMENT:
            management[f"{row['service']}:{row['operation']}"] += row["requests"]
            continue
        by_service[row["service"]] += row["requests"]
        by_op[f"{row['service']}:{row['operation']}"] += row["requests"]
    return {"requests": served.get("requests", 0), "management": sum(management.values()),
            "management_by_operation": dict(sorted(management.items())), "member": sum(by_service.values()),
            "per_account": round(served.get("requests", 0) / n, 2), "by_service": dict(sorted(by_service.items())),
            "by_operation": dict(sorted(by_op.items())), "throttled": served.get("throttled", 0)}


def figures(tool, name, raw, n, outcome):
    return {"tool": tool, "pass": name, "exit_code": raw["code"], "wall_s": round(raw["wall_s"], 2),
            "cpu_s": None if raw["cpu_s"] is None else round(raw["cpu_s"], 2), "emulator_cpu_s": round(raw["emulator_cpu_s"], 2),
            "peak_rss_mb_largest_process": round(raw["peak_rss_kb"] / 1024, 1),
            "peak_rss_mb_tree": round(raw.get("tree_rss_kb", 0) / 1024, 1),
            "peak_pss_mb_tree": round(raw.get("tree_pss_kb", 0) / 1024, 1),
            **requests_summary(raw["served"], n), "outcome": outcome}


def c7n_matches(out_dir):
    """Resources each policy matched (and acted on), summed over the accounts: c7n-org writes
    <account>/<region>/<policy>/resources.json for every policy run."""
    counts = Counter()
    for f in Path(out_dir).glob("*/*/*/resources.json"):
        counts[f.parent.name] += len(json.loads(f.read_text()))
    return dict(sorted(counts.items()))


def main():
    p = argparse.ArgumentParser(prog="scripts/bench-versus-c7n",
                                description="cm-baseline and Cloud Custodian's c7n-org on the same emulated fleet (docs/benchmark.md).")
    p.add_argument("--binary", help="the cm-baseline binary (scripts/bench-versus-c7n passes its release build)")
    p.add_argument("--c7n-org", default=os.environ.get("CM_C7N_ORG", "c7n-org"), help="the c7n-org command (its virtualenv's)")
    p.add_argument("--repo", default=str(HERE.parents[2]))
    p.add_argument("--cwd", default=os.getcwd())
    p.add_argument("--accounts", type=int, default=100, help="member accounts per tool (default 100; the Organization has twice as many)")
    p.add_argument("--tools", default="cm,c7n", help="which tools to measure, each on a fleet of its own: cm, c7n or both (default cm,c7n)")
    p.add_argument("--setup-workers", type=int, default=4)
    p.add_argument("--rss", choices=["auto", "proc"], default="auto")
    p.add_argument("--workdir")
    p.add_argument("--out", help="write every figure as JSON to this file")
    args = p.parse_args()
    tools = {t.strip() for t in args.tools.split(",")}
    if "cm" in tools and not args.binary:
        p.error("--binary is needed to measure cm-baseline")
    cwd = Path(args.cwd)
    repo = Path(args.repo).resolve()
    workdir = (cwd / args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="cm-versus-c7n-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.out:
        args.out = str((cwd / args.out).resolve())
    n = args.accounts
    # What run_phase passes to cm-baseline: its own defaults.
    cm_args = argparse.Namespace(binary=str((cwd / args.binary).resolve()) if args.binary else None, rss=args.rss,
                                 parallel_accounts=16, max_calls=32, account_calls=4, max_attempts=8)
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    passes, problems = [], []
    emu = Emulator(workdir)
    try:
        log(f"== Emulator at {emu.url}; work directory {workdir}")
        fleets = [t for t in ("cm", "c7n") if t in tools]
        log(f"== Set-up: Organization with {len(fleets)} x {n} member accounts in {HOME}")
        sargs = argparse.Namespace(accounts=len(fleets) * n, regions=1, setup_workers=args.setup_workers, no_warm=False,
                                   secure_share=0, basic_opt_in="")
        accounts, _, _, desired, setup_t = setup(emu, sargs, workdir, repo)
        cm_fleet = accounts[:n] if "cm" in tools else []
        c7n_fleet = accounts[-n:] if "c7n" in tools else []
        restrict_desired_state(desired, cm_fleet)
        t = time.monotonic()
        with ThreadPoolExecutor(args.setup_workers) as pool:
            list(pool.map(lambda a: bare_trail(emu, a), c7n_fleet))
        setup_t["c7n_bare_trails_s"] = round(time.monotonic() - t, 1)
        log(f"   set-up took {setup_t['total_s'] + setup_t['c7n_bare_trails_s']:.1f} s")
        faults = {"tally": True}

        if "cm" in tools:
            raw = run_phase("cm-1 apply --initial", ["apply", "--initial"], emu, cm_args, desired, workdir, faults, tree=True)
            st = Counter(a["status"] for a in raw["report"]["accounts"])
            changes = sum(len(a.get("changes", [])) for a in raw["report"]["accounts"])
            passes.append(figures("cm-baseline", "first: apply --initial", raw, n,
                                  {"accounts": dict(st), "changes": changes, "calls": raw["report"]["api_calls"]["total"]}))
            if raw["code"] != 0 or st.get("converged") != n:
                problems.append(f"cm-baseline apply --initial: exit {raw['code']}, accounts {dict(st)}")
            raw = run_phase("cm-2 plan (converged)", ["plan", "--detailed-exitcode"], emu, cm_args, desired, workdir, faults,
                            tree=True)
            changes = sum(len(a.get("changes", [])) for a in raw["report"]["accounts"])
            passes.append(figures("cm-baseline", "converged: plan", raw, n,
                                  {"changes": changes, "calls": raw["report"]["api_calls"]["total"]}))
            if raw["code"] != 0 or changes:
                problems.append(f"cm-baseline plan: exit {raw['code']}, {changes} changes")

        if "c7n" in tools:
            accounts_yml = workdir / "c7n-accounts.yml"
            accounts_yml.write_text(json.dumps({"accounts": [
                {"account_id": a, "name": f"c7n-{i:05d}", "regions": [HOME], "role": f"arn:aws:iam::{a}:role/{MEMBER_ROLE}"}
                for i, a in enumerate(c7n_fleet)]}, indent=1))
            env = emulator_env(emu)
            env.update(AWS_DEFAULT_REGION=HOME, AWS_REGION=HOME)
            cache = workdir / "c7n-cache"
            for k, name in ((1, "first"), (2, "converged")):
                shutil.rmtree(cache, ignore_errors=True)  # c7n's 15-minute resource cache: expired by the next run
                cache.mkdir()
                out_dir = workdir / f"c7n-{k}-output"
                argv = [args.c7n_org, "run", "-c", accounts_yml, "-u", repo / "tests/support/c7n/policies.yml",
                        "-s", out_dir, "--cache-path", cache]
                log(f"== c7n-{k} c7n-org run ({name} pass)")
                raw = measure(argv, env, emu, faults, f"c7n-{k}", workdir, rss=args.rss, tree=True)
                matched = c7n_matches(out_dir)
                passes.append(figures("c7n-org", f"{name}: run", raw, n, {"matched": matched}))
                if raw["code"] != 0:
                    problems.append(f"c7n-org {name} pass: exit {raw['code']}; see {workdir}/c7n-{k}.log")
                if k == 2 and any(matched.values()):
                    problems.append(f"c7n-org converged pass still matched {matched}")

        t = time.monotonic()
        for fleet, cm in ((cm_fleet, True), (c7n_fleet, False)):
            if ("cm" if cm else "c7n") not in tools:
                continue
            with ThreadPoolExecutor(args.setup_workers) as pool:
                left = dict(zip(fleet, pool.map(lambda a: check_subset(emu, a, cm), fleet)))
            bad = {a: m for a, m in left.items() if m}
            if bad:
                problems.append(f"{'cm-baseline' if cm else 'c7n-org'}: {len(bad)} accounts without the subset in place, "
                                f"e.g. {next(iter(bad.items()))}")
        check_s = time.monotonic() - t
    finally:
        emu.stop()

    result = {"started": started, "machine": {"cpus": os.cpu_count(), "load_average_at_end": list(os.getloadavg())},
              "source": subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"], capture_output=True,
                                       text=True).stdout.strip(),
              "accounts_per_tool": n, "region": HOME, "setup": {k: v for k, v in setup_t.items() if not isinstance(v, dict)},
              "check_s": round(check_s, 1), "passes": passes, "problems": problems, "workdir": str(workdir)}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(f"{n} member accounts per tool, one region ({HOME}), each tool with its default parallelism")
    print()
    print("| tool | pass | wall s | requests | per account | CPU s | peak PSS MB (tree) | peak RSS MB (tree) | largest process RSS MB | emulator CPU s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for x in passes:
        print(f"| {x['tool']} | {x['pass']} | {x['wall_s']:.1f} | {x['requests']:,} | {x['per_account']:.1f} | "
              f"{x['cpu_s'] if x['cpu_s'] is not None else '-'} | {x['peak_pss_mb_tree']:.1f} | {x['peak_rss_mb_tree']:.1f} | "
              f"{x['peak_rss_mb_largest_process']:.1f} | {x['emulator_cpu_s']:.1f} |")
    print()
    for x in passes:
        print(f"{x['tool']} {x['pass']}: by service {x['by_service']}; management account {x['management_by_operation']}; {x['outcome']}")
    return finish(problems, args.out, workdir)


if __name__ == "__main__":
    sys.exit(main())
