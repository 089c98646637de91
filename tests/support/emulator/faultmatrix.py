"""Fault matrix of cm-baseline against the emulator (run through `scripts/fault-matrix`).

For each class of fault a real fleet meets (throttling, server errors, connection resets, a
service control policy denying a Region, a service whose endpoint does not resolve, the
management account's credentials expiring, slow answers, Security Hub's pending standards
and rate limits), on a fresh emulated Organization:

  1. set-up (bench.py's): N member accounts in two regions, desired state with one file per
     account; then, as each member account, a customer's own untagged resources (IAM role
     `customer-admin`, S3 bucket `customer-data-<account>` with one object), read back and
     kept as a snapshot;
  2. `apply --initial`, with no fault (or under the fault, where the class is about initial
     set-up: see CLASSES);
  3. drift in every account: password policy minimum length 6 (F03), the AWS Config recorder
     stopped in us-east-1 (F08), and in secure accounts Security Hub control IAM.6 enabled
     again in us-east-1 (F13): every account has changes to make, global and regional;
  4. the fault switched on, `apply` (maintenance), the fault switched off;
  5. checks, with no fault: a `plan` of the same mode (what is still to do), the password
     policy and the us-east-1 recorder of every account read directly, the customer's
     resources read again and compared with the snapshot byte for byte.

From the measured run's JSON report and the emulator's counters it derives, per class:
accounts converged, partly converged, failed (with their skip and failure reasons), changes
lost (a change reported done that AWS does not show, or a drift left unrepaired without a
reported failure or skip), customer resources touched, calls, retries, throttled attempts,
faults the emulator injected, and wall time. Prints a Markdown table and writes it, with the
details, to docs/fault-matrix.md (`--doc`). Nothing is hard-coded: every figure is measured.
Test support only.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import botocore.session
import botocore.utils
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench import GLOBAL_SERVICES, HOME, MANAGEMENT, Emulator, log, run_phase, setup  # noqa: E402

OTHER = "us-east-1"
PASSWORD_POLICY = {"MinimumPasswordLength": 8, "RequireSymbols": True, "RequireNumbers": True,
                   "RequireUppercaseCharacters": True, "RequireLowercaseCharacters": True, "AllowUsersToChangePassword": True}
# Skip reasons that are the baseline's own rules, not a fault's consequence.
ORDINARY_SKIPS = {"initial_only", "opted_out", "control_tower"}
CUSTOMER_ROLE = "customer-admin"
FSBP_CONTROL = "arn:aws:securityhub:{region}:{account}:control/aws-foundational-security-best-practices/v/1.0.0/{control}"


# ---------------------------------------------------------------- fault classes
#
# Each class: `faults` for /cm-emulator/faults during the measured run(s), `arm` for the
# other hooks (called just before the run; may return a thread to start with it), and
# `initial`: "clean" (the fleet is set up with no fault, the maintenance run is measured) or
# "fault" (apply --initial is measured under the fault too: what the class is about happens
# when things are first enabled). Optional: `env`, environment variables of the measured
# run(s) only (given ctx; the set-up and the checks run without them), and `after`, events
# to record from what the emulator saw of a measured run (given its counts and ctx).


def arm_nothing(emu, ctx):
    return None


def arm_scp(emu, ctx):
    for a in ctx["scp_accounts"]:
        emu.hook("/cm-emulator/deny-regions", {"account_id": a, "regions": [OTHER]})  # Control Tower's NotAction list
    return None


def absent_service(value):
    """`--absent-service`: a botocore service name, or the suffix of the SDK's per-service
    endpoint variable `AWS_ENDPOINT_URL_<SERVICE>` (the model's serviceId upper-cased, spaces
    to underscores: `CONFIG_SERVICE` for AWS Config), as the ctx entries of class 6."""
    session = botocore.session.get_session()
    available = set(session.get_available_services())
    given = value.strip()
    suffix = given[len("AWS_ENDPOINT_URL_"):] if given.upper().startswith("AWS_ENDPOINT_URL_") else given
    if suffix in available:
        name, as_suffix = suffix, False
    else:  # botocore's own map of client names to hyphenated service ids, reversed
        hyphenated = suffix.lower().replace("_", "-")
        overrides = {v: k for k, v in getattr(botocore.utils, "CLIENT_NAME_TO_HYPHENIZED_SERVICE_ID_OVERRIDES", {}).items()}
        name, as_suffix = overrides.get(hyphenated, hyphenated), True
    if name not in available:
        raise argparse.ArgumentTypeError(f"{given!r}: neither a botocore service name nor an AWS_ENDPOINT_URL_<SERVICE> suffix")
    model = session.get_service_model(name)
    env_suffix = model.metadata["serviceId"].upper().replace(" ", "_")
    if as_suffix and suffix.upper() != env_suffix:
        raise argparse.ArgumentTypeError(f"{given!r}: not an AWS_ENDPOINT_URL_<SERVICE> suffix; {name}'s is {env_suffix}")
    if name in GLOBAL_SERVICES:
        raise argparse.ArgumentTypeError(f"{name}: the fleet is reached through it; absent, no account is entered at all "
                                         "(that is not a service missing from a Region)")
    label = model.metadata.get("serviceFullName") or model.metadata["serviceId"]
    if name == "config":
        expect = ("Expected with AWS Config: every account reports F08 (AWS Config) skipped `region_unavailable` in "
                  "every region (the recorder stopped in us-east-1 stays stopped, and the report says why); secure "
                  "accounts also F13 (Security Hub, which requires F08) skipped `blocked_dependency`; everything else "
                  "converges (the password policy is repaired); no account fails, nothing is lost.")
    else:
        expect = (f"Expected: the features that use {label} skipped `region_unavailable` in every region, and those "
                  "that require them skipped `blocked_dependency`; everything else converges; no account fails, nothing "
                  "is lost.")
    return {"absent_service": name, "absent_label": label, "absent_env": f"AWS_ENDPOINT_URL_{env_suffix}",
            "absent_url": f"http://{name}.absent.invalid", "absent_expect": expect,
            "absent_names": sorted({name, model.signing_name, model.endpoint_prefix})}


def absent_env(ctx):
    """The absent service's own endpoint, at a name that never resolves (RFC 6761 `.invalid`)."""
    return {ctx["absent_env"]: ctx["absent_url"]}


def absent_seen(served, ctx):
    n = sum(row["requests"] for row in served.get("by_operation", []) if row["service"] in ctx["absent_names"])
    return [f"requests for {ctx['absent_label']} that reached the emulator during the run: {n} "
            "(0 expected: every call fails in the SDK's name lookup, before any connection)"]


def arm_expiry(back_after):
    def arm(emu, ctx):
        emu.hook("/cm-emulator/expire-credentials", {"account_id": "management", "after_requests": ctx["expire_after"]})
        if back_after is None:
            return None
        events, run_done = ctx.setdefault("events", []), ctx["run_done"]

        def clear_later():
            t0 = time.monotonic()
            while not run_done.wait(0.2):
                if emu.hook("/cm-emulator/expire-credentials").get("expired", 0) > 0:
                    events.append(f"first request refused as expired {time.monotonic() - t0:.1f} s into the run")
                    time.sleep(back_after)
                    state = emu.hook("/cm-emulator/expire-credentials")
                    emu.hook("/cm-emulator/expire-credentials", [])
                    ctx["expired_refused"] = state.get("expired", 0)
                    events.append(f"credentials valid again {back_after} s later ({ctx['expired_refused']} requests refused meanwhile)")
                    return
            events.append("no request was refused as expired: the run made fewer management requests than expected")

        return threading.Thread(target=clear_later, daemon=True)
    return arm


def arm_securityhub(emu, ctx):
    emu.hook("/cm-emulator/securityhub", {"pending_seconds": ctx["pending_seconds"], "rate_limits": True})
    return None


CLASSES = [
    dict(n="1", key="none", title="none (baseline)", initial="clean", faults={}, arm=arm_nothing,
         fault="no fault", how="The reference for calls and time."),
    dict(n="2", key="throttling", title="throttling 30 %", initial="clean", faults={"throttle_share": 0.3}, arm=arm_nothing,
         fault="30 % of AWS requests answered with the service's throttling error",
         how="Seeded draws on every AWS request, each service's own throttling answer in its own protocol."),
    dict(n="3", key="server-errors", title="server errors 10 % + 10 %", initial="clean",
         faults={"internal_error_share": 0.1, "unavailable_share": 0.1}, arm=arm_nothing,
         fault="10 % HTTP 500 and 10 % HTTP 503, each in the service's own code",
         how="Seeded draws on every AWS request; the request does not reach the service."),
    dict(n="4", key="resets", title="connection resets 10 %", initial="clean", faults={"reset_share": 0.1}, arm=arm_nothing,
         fault="10 % of AWS requests: connection reset (TCP RST) before any answer",
         how="Nothing reaches the service: a retry is safe, and the client cannot know that."),
    dict(n="5", key="scp", title="SCP region deny (5 accounts)", initial="clean", faults={}, arm=arm_scp,
         fault="us-east-1 denied to 5 member accounts by a service control policy with AWS Control Tower's exemptions",
         how="The denied accounts: the secure ones first, then basic ones. Basic accounts use nothing in us-east-1 that "
             "Control Tower's list denies (AWS Config is exempt), so a denied basic account has nothing out of reach."),
    dict(n="6", key="absent", title="service absent: endpoint name does not resolve", initial="clean", faults={},
         arm=arm_nothing, env=absent_env, after=absent_seen,
         fault="{absent_label} absent in every region: its endpoint's host name does not resolve "
               "(`{absent_env}={absent_url}`)",
         how="Where AWS does not offer a service in a Region, the service has no endpoint there: its host name does not "
             "resolve, and the SDK fails in DNS before it connects. The emulator, one endpoint for every service and "
             "region, cannot fail a name lookup, so the measured run gets that very failure for real: the SDK's "
             "per-service endpoint variable points the service at a name under `.invalid`, which never resolves "
             "(RFC 6761); the service is then absent in every region of that run. Set-up, drift and checks reach the "
             "emulator as usual. {absent_expect}"),
    dict(n="7", key="expiry", title="management credentials expire, back after 10 s", initial="clean", faults={},
         arm=arm_expiry(10), fault="management credentials expire once about half the accounts are entered; valid again 10 s later",
         how="Expire after the run's management requests other than AssumeRole plus half the accounts' AssumeRole "
             "(counted in the set-up run); the script clears the expiry 10 s after the first refusal."),
    dict(n="7b", key="expiry-never", title="management credentials expire for good", initial="clean", faults={},
         arm=arm_expiry(None), background=True,
         fault="management credentials expire once about half the accounts are entered, for the rest of the run",
         how="Never cleared. Expected: the accounts not started are reported failed with one fleet-wide reason; nothing lost."),
    dict(n="8", key="slow", title="slow answers 5 % x 3 s", initial="clean", faults={"slow_share": 0.05, "slow_ms": 3000},
         arm=arm_nothing, fault="5 % of answers held back 3 s after the call was carried out",
         how="A client that gives up and retries finds its change already made."),
    dict(n="9", key="securityhub", title="Security Hub pending + rate limits", initial="fault", faults={}, arm=arm_securityhub,
         fault="a standard just enabled stays PENDING {pending_seconds:g} s; Security Hub's documented request rates enforced",
         secure_only=True,
         how="Secure accounts only (basic ones do not use Security Hub). Measured twice: `apply --initial` under the "
             "fault (standards are enabled then) and maintenance under the fault (the drift re-enables control IAM.6 "
             "in us-east-1)."),
]


class LockedEmulator(Emulator):
    """bench.py's emulator, with boto3 client creation serialised: two classes are set up
    at once here, each with a pool of threads, and boto3's default session is not safe to
    create clients from concurrently."""
    _lock = threading.Lock()

    def client(self, *args, **kwargs):
        with LockedEmulator._lock:
            return super().client(*args, **kwargs)


# ---------------------------------------------------------------- the customer's resources


def customer_create(emu, a):
    iam = emu.client("iam", a)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{a}:root"},
                                                     "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName=CUSTOMER_ROLE, AssumeRolePolicyDocument=json.dumps(trust), Description="The customer's own admin role")
    iam.put_role_policy(RoleName=CUSTOMER_ROLE, PolicyName="customer-inline", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}))
    iam.attach_role_policy(RoleName=CUSTOMER_ROLE, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    s3 = emu.client("s3", a)
    bucket = f"customer-data-{a}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": HOME})
    s3.put_object(Bucket=bucket, Key="records/2026.csv", Body=b"id,amount\n1,100\n2,250\n")


def _call(fn, **kw):
    try:
        out = fn(**kw)
    except ClientError as e:
        return {"error": e.response["Error"].get("Code")}
    out.pop("ResponseMetadata", None)
    for k, v in list(out.items()):
        if hasattr(v, "read"):
            out[k] = v.read().decode("utf-8", "replace")
    return out


def customer_snapshot(emu, a):
    """Everything readable of the customer's role and bucket, as canonical JSON."""
    iam, s3 = emu.client("iam", a), emu.client("s3", a)
    bucket = f"customer-data-{a}"
    snap = {
        "role": _call(iam.get_role, RoleName=CUSTOMER_ROLE),
        "role_inline": _call(iam.list_role_policies, RoleName=CUSTOMER_ROLE),
        "role_inline_doc": _call(iam.get_role_policy, RoleName=CUSTOMER_ROLE, PolicyName="customer-inline"),
        "role_attached": _call(iam.list_attached_role_policies, RoleName=CUSTOMER_ROLE),
        "role_tags": _call(iam.list_role_tags, RoleName=CUSTOMER_ROLE),
        "bucket_location": _call(s3.get_bucket_location, Bucket=bucket),
        "bucket_tags": _call(s3.get_bucket_tagging, Bucket=bucket),
        "bucket_policy": _call(s3.get_bucket_policy, Bucket=bucket),
        "bucket_encryption": _call(s3.get_bucket_encryption, Bucket=bucket),
        "bucket_versioning": _call(s3.get_bucket_versioning, Bucket=bucket),
        "bucket_public_access_block": _call(s3.get_public_access_block, Bucket=bucket),
        "bucket_acl": _call(s3.get_bucket_acl, Bucket=bucket),
        "bucket_lifecycle": _call(s3.get_bucket_lifecycle_configuration, Bucket=bucket),
        "bucket_object_lock": _call(s3.get_object_lock_configuration, Bucket=bucket),
        "bucket_request_payment": _call(s3.get_bucket_request_payment, Bucket=bucket),
        "objects": _call(s3.list_object_versions, Bucket=bucket),
        "object": _call(s3.get_object, Bucket=bucket, Key="records/2026.csv"),
    }
    return json.dumps(snap, sort_keys=True, default=str)


# ---------------------------------------------------------------- drift and direct checks


def drift_account(emu, a, tier):
    """Drifts one account; returns [(feature, region, what)] that were drifted."""
    done = []
    emu.client("iam", a).update_account_password_policy(MinimumPasswordLength=6, AllowUsersToChangePassword=True)
    done.append(("F03", "global", "password policy minimum length 6, symbols no longer required"))
    try:
        emu.client("config", a, OTHER).stop_configuration_recorder(ConfigurationRecorderName="default")
        done.append(("F08", OTHER, "Config recorder `default` stopped"))
    except ClientError as e:
        log(f"   {a}: Config recorder in {OTHER} not stopped: {e}")
    if tier == "secure":
        try:
            emu.client("securityhub", a, OTHER).update_standards_control(
                StandardsControlArn=FSBP_CONTROL.format(region=OTHER, account=a, control="IAM.6"), ControlStatus="ENABLED")
            done.append(("F13", OTHER, "Security Hub control IAM.6 enabled again"))
        except ClientError as e:
            log(f"   {a}: Security Hub control in {OTHER} not drifted: {e}")
    return done


def direct_checks(emu, a):
    """What AWS shows of the drifted items: {(feature, region): (ok, what is seen)}."""
    out = {}
    policy = _call(emu.client("iam", a).get_account_password_policy).get("PasswordPolicy", {})
    wrong = {k: policy.get(k) for k, v in PASSWORD_POLICY.items() if policy.get(k) != v}
    out[("F03", "global")] = (not wrong, "at baseline" if not wrong else f"differs: {wrong}")
    st = _call(emu.client("config", a, OTHER).describe_configuration_recorder_status, ConfigurationRecorderNames=["default"])
    rec = (st.get("ConfigurationRecordersStatus") or [{}])[0]
    out[("F08", OTHER)] = (bool(rec.get("recording")), f"recording={rec.get('recording')}" if rec else f"no recorder ({st.get('error')})")
    return out


# ---------------------------------------------------------------- reading a report


def short_error(text, limit=160):
    """An account's error, short, with what differs between accounts taken out."""
    t = re.sub(r"\b\d{12}\b", "<acct>", text or "")
    t = re.sub(r"arn:aws:sts::<acct>:assumed-role/\S+", "<caller>", t)
    t = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<id>", t)
    t = re.sub(r"\(\d+ made\)", "(n made)", t)
    t = re.sub(r"\s+", " ", t).strip()
    return t if len(t) <= limit else t[:limit - 3] + "..."


def key_of(c):
    return (c["feature"], c["region"], c["resource_type"], c["resource"])


def classify(report):
    """Accounts converged / partly converged / failed, with the reasons of the latter two."""
    conv, partly, failed = [], [], []
    reasons = Counter()
    for acc in report["accounts"]:
        odd = [s for s in acc.get("skips", []) if s["reason"] not in ORDINARY_SKIPS]
        done = sum(1 for x in acc.get("applied") or [] if x["outcome"] == "done")
        status = acc["status"]
        if status == "converged" and not odd:
            conv.append(acc["account_id"])
            continue
        grouped = defaultdict(list)  # (reason, region) -> features
        for s in odd:
            grouped[(s["reason"], s["region"])].append(s["feature"])
        why = [f"skip {reason} in {region}: {' '.join(dict.fromkeys(f))}" for (reason, region), f in grouped.items()]
        if status == "not_converged":
            why.append(f"not_converged ({len(acc.get('remaining') or [])} remaining)")
        if status == "failed":
            why.append(f"failed: {short_error(acc.get('error'), 400)}")
        if status == "converged" or status == "not_converged" or done:
            partly.append(acc["account_id"])
        else:
            failed.append(acc["account_id"])
        for w in dict.fromkeys(why):
            reasons[w] += 1
    return conv, partly, failed, reasons


def lost_changes(report, after_plan, checks, drifted):
    """Changes lost: reported done but absent, or left undone with nothing reported."""
    lost, reported = [], []
    by_acc = {a["account_id"]: a for a in report["accounts"]} if report else {}
    fresh = {a["account_id"]: a for a in after_plan["accounts"]} if after_plan else {}

    def covered(acc, feature, region):
        """Why an unrepaired item of `acc` is accounted for by the report, or None."""
        if acc is None:
            return None
        if acc["status"] == "failed":
            return "account failed"
        for x in acc.get("applied") or []:
            if x["feature"] == feature and x["region"] in (region, "global") and x["outcome"] != "done":
                return f"change {x['outcome']}"
        for s in acc.get("skips", []):
            if s["feature"] == feature and s["region"] in (region, "*", "global") and s["reason"] not in ORDINARY_SKIPS:
                return f"skip {s['reason']}"
        if acc["status"] == "not_converged" and any(r["feature"] == feature for r in acc.get("remaining") or []):
            return "reported remaining"
        return None

    # 1. What a fresh plan (no fault) still finds to do.
    for a, fa in fresh.items():
        acc = by_acc.get(a)
        done = {key_of(x) for x in (acc or {}).get("applied") or [] if x["outcome"] == "done"}
        for c in fa.get("changes", []):
            item = f"{a} {c['feature']} {c['action']} {c['resource_type']} {c['resource']} ({c['region']})"
            if key_of(c) in done:
                lost.append(item + ": reported done, still to do")
                continue
            why = covered(acc, c["feature"], c["region"])
            (reported if why else lost).append(item + (f": {why}" if why else ": left undone, nothing reported"))
        if fa["status"] == "failed":
            lost.append(f"{a}: the checking plan failed: {short_error(fa.get('error'))}")
    # 2. What AWS shows of each drifted item, read directly (where the plan did not already say).
    seen = lost + reported
    for a, items in drifted.items():
        acc = by_acc.get(a)
        for feature, region, _what in items:
            ok, what = checks.get(a, {}).get((feature, region), (True, "not checked"))
            if ok:
                continue
            if any(s.startswith(f"{a} {feature} ") and f"({region})" in s for s in seen):
                continue
            applied = [x for x in (acc or {}).get("applied") or [] if x["feature"] == feature and x["region"] == region]
            item = f"{a} {feature} ({region}) read directly: {what}"
            if any(x["outcome"] == "done" for x in applied):
                lost.append(item + ": reported done")
            elif covered(acc, feature, region):
                reported.append(item + f": {covered(acc, feature, region)}")
            else:
                lost.append(item + ": left undone, nothing reported")
    # 3. Drift repaired in AWS that the report does not show as a change made (an account
    #    tried again within the run, say): nothing lost, but the run's record is short.
    unreported = []
    for a, items in drifted.items():
        acc, fa = by_acc.get(a), fresh.get(a)
        for feature, region, what in items:
            chk = checks.get(a, {}).get((feature, region))
            if chk is not None:
                repaired = chk[0]
            elif fa is not None and fa["status"] != "failed":
                repaired = not any(c["feature"] == feature and c["region"] == region for c in fa.get("changes", []))
            else:
                continue
            made = any(x["feature"] == feature and x["region"] == region and x["outcome"] == "done"
                       for x in (acc or {}).get("applied") or [])
            if repaired and not made:
                unreported.append(f"{a} {feature} ({region}) {what}: repaired in AWS, but the report shows no change made "
                                  f"(account status {acc['status'] if acc else 'absent'})")
    return lost, reported, unreported


# ---------------------------------------------------------------- one class


def emulator_fault_counts(emu, served, ctx):
    """What the emulator injected during the run, by kind."""
    out = {k: served.get(k, 0) for k in ("throttled", "internal_errors", "unavailable", "resets", "slowed")}
    out["scp_denied"] = emu.hook("/cm-emulator/deny-regions").get("denied", 0)
    out["expired_refused"] = emu.hook("/cm-emulator/expire-credentials").get("expired", 0) or ctx.pop("expired_refused", 0)
    out["securityhub_throttled"] = emu.hook("/cm-emulator/securityhub").get("throttled", 0)
    return {k: v for k, v in out.items() if v}


def disarm(emu, ctx):
    emu.hook("/cm-emulator/faults", {})
    for a in ctx.get("scp_accounts", []):
        emu.hook("/cm-emulator/deny-regions", {"account_id": a, "regions": []})
    emu.hook("/cm-emulator/expire-credentials", [])
    emu.hook("/cm-emulator/securityhub", {"pending_seconds": 3, "rate_limits": True})  # the emulator's defaults


def measured(name, command, cls, emu, args, desired, workdir, ctx):
    """One run under the class's fault; its figures."""
    faults = dict(cls["faults"], seed=args.seed, tally=True)
    ctx["run_done"] = threading.Event()
    thread = cls["arm"](emu, ctx)
    if thread:
        thread.start()
    try:
        extra_env = cls["env"](ctx) if cls.get("env") else None
        raw = run_phase(name, command, emu, args, desired, workdir, faults, timeout=args.timeout, extra_env=extra_env)
        served, no_report = raw["served"], None
        stem = Path(raw["report_path"]).stem
        (workdir / f"{stem}.emulator.json").write_text(json.dumps(served, indent=1) + "\n")  # what the emulator saw
    except SystemExit as e:
        raw, served, no_report = None, {}, str(e)
    ctx["run_done"].set()
    if thread:
        thread.join(timeout=120)
    fault_counts = emulator_fault_counts(emu, served, ctx)
    if cls.get("after") and served:
        ctx.setdefault("events", []).extend(cls["after"](served, ctx))
    disarm(emu, ctx)
    return raw, fault_counts, no_report


def quiet(emu, thread, seconds=3.0, most=180):
    """Waits until the emulator has received no AWS request for `seconds` (or the run ended)."""
    t0, last, since = time.monotonic(), None, time.monotonic()
    while thread.is_alive() and time.monotonic() - t0 < most:
        n = emu.hook("/cm-emulator/faults").get("requests")
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= seconds and n:
            return
        time.sleep(0.5)


def check_plan(name, mode, emu, args, desired, workdir):
    command = ["plan", "--initial"] if mode == "initial" else ["plan"]
    try:
        return run_phase(name, command, emu, args, desired, workdir, {}, timeout=args.timeout)["report"]
    except SystemExit as e:
        log(f"   checking plan gave no report: {str(e)[:300]}")
        return None


class ClassRun:
    """One fault class on its own emulator and Organization: `prepare` (set-up, initial run,
    drift), `measure` (the maintenance run under the fault), `finish` (checks with no fault,
    rows of the table). A class whose run mostly waits (the product's probes of a fleet out
    of reach) can be measured in a thread while the next classes are prepared and measured."""

    def __init__(self, cls, args, base, repo):
        self.cls, self.args, self.repo = cls, args, repo
        self.t0 = time.monotonic()
        self.workdir = base / cls["key"]
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.n_basic, self.n_secure = (0, args.secure_only_accounts) if cls.get("secure_only") else (args.accounts, args.secure)
        self.n = self.n_basic + self.n_secure
        self.emu = None
        self.runs = []
        self.error = None

    def one(self, name, command, mode):
        raw, fault_counts, no_report = measured(name, command, self.cls, self.emu, self.args, self.desired, self.workdir, self.ctx)
        return {"name": name, "mode": mode, "raw": raw, "faults": fault_counts, "no_report": no_report,
                "events": list(self.ctx.pop("events", []))}

    def pool(self):
        return ThreadPoolExecutor(self.args.setup_workers)

    def prepare(self):
        cls, args, n = self.cls, self.args, self.n
        ns = SimpleNamespace(accounts=n, regions=2, setup_workers=args.setup_workers, no_warm=False,
                             secure_share=self.n_secure / n, basic_opt_in=args.basic_opt_in)
        self.emu = emu = LockedEmulator(self.workdir)
        log(f"== [{cls['key']}] emulator at {emu.url}; {self.n_basic} basic + {self.n_secure} secure accounts; "
            f"work directory {self.workdir}")
        self.accounts, _regions, self.tiers, self.desired, _t = setup(emu, ns, self.workdir, self.repo)
        accounts, tiers = self.accounts, self.tiers
        with self.pool() as pool:
            list(pool.map(lambda a: customer_create(emu, a), accounts))
            self.before = dict(zip(accounts, pool.map(lambda a: customer_snapshot(emu, a), accounts)))
        log(f"   set-up {time.monotonic() - self.t0:.1f} s (customer role and bucket in each account)")
        basics = [a for a in accounts if tiers[a] == "basic"]
        secures = [a for a in accounts if tiers[a] == "secure"]
        # SCP: 5 accounts, the secure ones first (what they use in us-east-1 is denied; basic
        # accounts use there only services Control Tower's list exempts), then basic ones.
        self.ctx = {"scp_accounts": (secures + basics)[:5] if cls["key"] == "scp" else [],
                    **args.absent_service, "pending_seconds": args.pending_seconds, "expire_after": None}
        if cls["initial"] == "fault":
            r = self.one("initial under fault", ["apply", "--initial"], "initial")
            r["after_plan"] = check_plan("check after initial", "initial", emu, args, self.desired, self.workdir)
            r["checks"], r["drifted"] = {}, {}
            self.runs.append(r)
        else:
            raw = run_phase("initial", ["apply", "--initial"], emu, args, self.desired, self.workdir, {"tally": True},
                            timeout=args.timeout)
            rep = raw["report"]
            bad = {a["account_id"]: a.get("error") for a in rep["accounts"] if a["status"] != "converged"}
            log(f"   initial set-up (no fault): {raw['wall_s']:.1f} s, {len(rep['accounts']) - len(bad)} of {n} converged")
            if bad:
                log(f"   accounts not converged at set-up: {json.dumps(bad)[:1000]}")
            # Management requests of a run: AssumeRole once per account, the rest once per
            # run; credentials expire after the latter and half the accounts' AssumeRole.
            mgmt = Counter()
            for row in raw["served"].get("by_operation", []):
                if row["account"] == MANAGEMENT:
                    mgmt[f"{row['service']}:{row['operation']}"] += row["requests"] - row["throttled"]
            self.ctx["expire_after"] = sum(v for k, v in mgmt.items() if k != "sts:AssumeRole") + n // 2
            self.setup_initial = {"wall_s": raw["wall_s"], "not_converged": bad, "management_requests": dict(mgmt)}
        t = time.monotonic()
        with self.pool() as pool:
            self.drifted = dict(zip(accounts, pool.map(lambda a: drift_account(emu, a, tiers[a]), accounts)))
        log(f"   drifted {sum(len(v) for v in self.drifted.values())} items in {n} accounts in {time.monotonic() - t:.1f} s")

    def measure(self):
        try:
            self.maintenance = self.one("maintenance", ["apply"], "maintenance")
        except BaseException as e:  # noqa: B036 (kept for finish(), which raises it in the main thread)
            self.error = e

    def finish(self):
        if self.error:
            raise self.error
        emu, args, accounts = self.emu, self.args, self.accounts
        m = self.maintenance
        m["after_plan"] = check_plan("check after maintenance", "maintenance", emu, args, self.desired, self.workdir)
        with self.pool() as pool:
            m["checks"] = dict(zip(accounts, pool.map(lambda a: direct_checks(emu, a), accounts)))
            after = dict(zip(accounts, pool.map(lambda a: customer_snapshot(emu, a), accounts)))
        m["drifted"] = self.drifted
        if getattr(self, "overlapped", False):
            m["events"].append("measured while the next classes were set up and measured alongside on the same machine "
                               "(the run mostly waits out the product's probes of the management account)")
        self.runs.append(m)
        touched = sorted(a for a in accounts if after[a] != self.before[a])
        for a in touched:
            (self.workdir / f"customer-{a}.before.json").write_text(self.before[a])
            (self.workdir / f"customer-{a}.after.json").write_text(after[a])
        if hasattr(self, "setup_initial"):
            s = self.setup_initial
            m["events"].insert(0, f"set-up `apply --initial` (no fault): {s['wall_s']:.1f} s, "
                                  f"{self.n - len(s['not_converged'])} of {self.n} accounts converged"
                                  + (f"; not converged: {json.dumps(s['not_converged'])[:600]}" if s["not_converged"] else ""))
        rows = [dict(summarize(self.cls, r, self.n_basic, self.n_secure, touched, self.ctx, self.workdir),
                     runs_in_class=len(self.runs)) for r in self.runs]
        self.stop()
        for r in rows:
            r["class_wall_s"] = round(time.monotonic() - self.t0, 1)
        return rows

    def stop(self):
        if self.emu:
            self.emu.stop()


def summarize(cls, r, n_basic, n_secure, touched, ctx, workdir):
    raw = r["raw"]
    row = {"class": cls["key"], "title": cls["title"], "fault": cls["fault"].format(**ctx), "run": r["name"],
           "accounts": n_basic + n_secure, "basic": n_basic, "secure": n_secure, "customer_touched": touched,
           "events": r["events"], "faults_injected": r["faults"], "how": cls["how"].format(**ctx), "workdir": str(workdir)}
    if cls["key"] == "scp":
        row["fault_accounts"] = ctx["scp_accounts"]
    if cls["key"].startswith("expiry"):
        row["fault"] += f" (after {ctx['expire_after']} management requests)"
    report = raw["report"] if raw else None
    if report is None:
        row.update(no_report=r["no_report"], converged=None, partly=None, failed=None, reasons={}, calls=None)
    else:
        conv, partly, failed, reasons = classify(report)
        calls = report["api_calls"]
        row.update(exit_code=raw["code"], wall_s=round(raw["wall_s"], 1), converged=len(conv), partly=len(partly),
                   failed=len(failed), partly_accounts=partly, failed_accounts=failed,
                   reasons=dict(reasons.most_common()), report=raw["report_path"],
                   calls={k: calls[k] for k in ("total", "errors", "retries", "throttled")},
                   attempts=raw["served"].get("requests"))
    lost, reported, unreported = lost_changes(report, r.get("after_plan"), r.get("checks", {}), r.get("drifted", {}))
    row["lost"], row["unrepaired_reported"], row["unreported"] = lost, reported, unreported
    row["checked"] = r.get("after_plan") is not None
    row["drifted_items"] = sum(len(v) for v in r.get("drifted", {}).values())
    return row


# ---------------------------------------------------------------- output


def fmt_reasons(reasons, limit=3):
    items = list(reasons.items())
    text = "; ".join(f"{short_error(k, 110)} ×{v}" for k, v in items[:limit])
    if len(items) > limit:
        text += f"; +{len(items) - limit} more"
    return text.replace("|", "\\|") or "-"


def md_table(rows):
    head = ["#", "fault class", "run", "accounts", "converged", "partly", "failed", "partly/failed: reasons",
            "changes lost", "made, unreported", "customer touched", "calls", "retries", "throttled", "faults injected", "wall s"]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if h in (
        "accounts", "converged", "partly", "failed", "changes lost", "made, unreported", "customer touched", "calls", "retries",
        "throttled", "wall s") else "---" for h in head) + "|"]
    for r in rows:
        if r.get("no_report"):
            mid = ["-", "-", "-", "no report: " + short_error(r["no_report"].splitlines()[0])]
            calls = ["-", "-", "-"]
            wall = "-"
        else:
            mid = [str(r["converged"]), str(r["partly"]), str(r["failed"]), fmt_reasons(r["reasons"])]
            calls = [str(r["calls"]["total"]), str(r["calls"]["retries"]), str(r["calls"]["throttled"])]
            wall = f"{r['wall_s']:.1f}"
        injected = ", ".join(f"{k} {v}" for k, v in r["faults_injected"].items()) or "-"
        lost = str(len(r["lost"])) if r["checked"] else f"{len(r['lost'])} (no checking plan)"
        out.append("| " + " | ".join([r["n"], r["title"], r["run"], f"{r['accounts']} ({r['secure']} secure)", *mid, lost,
                                       str(len(r["unreported"])), str(len(r["customer_touched"])), *calls, injected, wall]) + " |")
    return "\n".join(out)


COLUMNS = """\
| column | meaning |
|---|---|
| run | the measured `cm-baseline` run: `maintenance` is `apply` after the drift below, with the fault on; `initial under fault` is `apply --initial` on the fresh fleet with the fault on (the class is about what happens when things are first enabled) |
| accounts | member accounts in the fresh Organization of this class (basic and secure tier) |
| converged | accounts whose report status is `converged` with no skip but the baseline's own rules (`initial_only`, `opted_out`, `control_tower`) |
| partly | accounts that got part of the way: `converged` with a fault's skip (`region_unavailable`, ...), `not_converged`, or `failed` after making at least one change |
| failed | accounts `failed` without a change made |
| partly/failed: reasons | the skips and errors of those accounts, grouped, with how many accounts each (account ids and ARNs taken out); all of them under Details |
| changes lost | must be 0. Checked with no fault after the run: a fresh `plan` of the same mode, and the password policy and us-east-1 Config recorder of every account read directly. Lost is a change the report says was done that AWS does not show, or a drift left unrepaired in an account the report does not mark failed, with no failed or blocked change and no skip for it |
| made, unreported | drifted items that AWS shows repaired after the run but that the report does not list as a change made (`applied` outcome `done`): nothing is lost, but the report is short of what the run did |
| customer touched | must be 0: accounts whose customer-owned role `customer-admin` (trust, inline and attached policies, tags) or bucket `customer-data-<account>` (every bucket setting, objects and content) differ in any byte from before the initial run |
| calls, retries, throttled | the report's `api_calls`: calls made (a retried call counts once), attempts beyond the first, attempts answered with throttling |
| faults injected | the emulator's own count of what it did to the run's requests: throttled, internal_errors (500), unavailable (503), resets, slowed, scp_denied, expired_refused, securityhub_throttled (Security Hub's own rate limits, on in every class as on AWS). The absent service's class injects nothing here: its endpoint's name fails to resolve in the product's own process |
| wall s | wall time of the measured run |
"""


def write_doc(path, rows, meta, args):
    lines = [
        "# Fault matrix",
        "",
        "What `cm-baseline` does to an Organization when AWS misbehaves, one fault class per row,",
        "each on a fresh emulated fleet. Produced by `scripts/fault-matrix` (driver",
        "`tests/support/emulator/faultmatrix.py`); every figure below is measured, none is written",
        "by hand. Rerun:",
        "",
        "```sh",
        "scripts/fault-matrix                          # builds the release binary, runs every class",
        "scripts/fault-matrix --binary PATH            # an existing binary, nothing built",
        "scripts/fault-matrix --classes scp,expiry     # some classes only",
        "```",
        "",
        f"Measured {meta['started']} on {meta['machine']}; binary `{meta['binary']}` "
        f"(`{meta['binary_version']}`, {meta['binary_kind']} build, sha256 `{meta['binary_sha256'][:16]}`, "
        f"built {meta['binary_mtime']}); matrix script at `{meta['source']}`. Total run time of the matrix: "
        f"{meta['total_s'] / 60:.1f} minutes; load average {meta['load_average_at_start'][0]:.1f} at the start, "
        f"{meta['load_average_at_end'][0]:.1f} at the end (anything else running on the machine slows the emulator "
        "and stretches wall times; calls and outcomes do not depend on it).",
        "",
        f"Each class: a new emulator and Organization of {args.accounts} basic + {args.secure} secure accounts "
        f"(Security Hub class: {args.secure_only_accounts} secure accounts only), regions {HOME} (home) and {OTHER}; "
        f"basic accounts opt in to {args.basic_opt_in}; `--parallel-accounts {args.parallel_accounts} "
        f"--max-calls {args.max_calls} --account-calls {args.account_calls} --max-attempts {args.max_attempts}`. "
        "Before anything else, each account gets the customer's own untagged IAM role and S3 bucket. "
        "Then `apply --initial` with no fault (the Security Hub class: under its fault, measured), "
        "then drift in every account (password policy minimum length 6; Config recorder stopped in "
        f"{OTHER}; secure accounts also Security Hub control IAM.6 enabled again in {OTHER}), then the "
        f"fault and `apply`. Set-ups are not measured and run {args.setup_ahead} at a time; no other class "
        + ("runs during a measured run, except as said of 7b below. " if args.overlap else "runs during a measured run. ") +
        f"Fault draws use seed {args.seed}. The emulator's defaults stay on in every class "
        "(Security Hub standards PENDING 3 s, its request rates; IAM propagation 2 s), as on AWS.",
        "",
        md_table(rows),
        "",
        COLUMNS,
        "## Details",
        "",
    ]
    for r in rows:
        lines.append(f"### {r['n']}. {r['title']} — {r['run']}")
        lines.append("")
        lines.append(f"Fault: {r['fault']}. {r['how']}")
        if r.get("fault_accounts"):
            lines.append(f"Denied accounts: {', '.join(r['fault_accounts'])}.")
        for e in r["events"]:
            lines.append(f"- {e}")
        if r.get("no_report"):
            lines.append(f"- no JSON report: `{short_error(r['no_report'].splitlines()[0])}`")
        else:
            lines.append(f"- exit code {r['exit_code']}; calls {r['calls']['total']} ({r['calls']['errors']} ended in an error), "
                         f"attempts seen by the emulator {r['attempts']}")
            for k, v in r["reasons"].items():
                lines.append(f"- {v} account(s): {k}")
            if r["partly_accounts"]:
                lines.append(f"- partly converged: {', '.join(r['partly_accounts'])}")
            if r["failed_accounts"]:
                lines.append(f"- failed: {', '.join(r['failed_accounts'])}")
        for x in r["lost"]:
            lines.append(f"- LOST: {x}")
        for x in r["unreported"]:
            lines.append(f"- MADE BUT NOT REPORTED: {x}")
        if r["unrepaired_reported"]:
            lines.append(f"- left undone and reported as such: {len(r['unrepaired_reported'])} item(s), e.g. {r['unrepaired_reported'][0]}")
        if r["customer_touched"]:
            lines.append(f"- CUSTOMER RESOURCES CHANGED in: {', '.join(r['customer_touched'])}")
        lines.append("")
    Path(path).write_text("\n".join(lines).rstrip() + "\n")


# ---------------------------------------------------------------- main


def machine():
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GB"
    except (OSError, StopIteration, ValueError):
        pass
    return f"{os.cpu_count()} cores ({cpu}){mem}, {platform.system()} {platform.release()}"


def main():
    p = argparse.ArgumentParser(prog="scripts/fault-matrix", description="Fault matrix of cm-baseline against the emulator (see docs/fault-matrix.md).")
    p.add_argument("--binary", required=True, help="the cm-baseline binary")
    p.add_argument("--repo", default=str(HERE.parents[2]), help="the repository (desired-state/, docs/)")
    p.add_argument("--cwd", default=os.getcwd(), help="relative paths are taken from here (scripts/fault-matrix passes the caller's)")
    p.add_argument("--classes", default=",".join(c["key"] for c in CLASSES),
                   help="comma-separated classes, of: " + ", ".join(c["key"] for c in CLASSES))
    p.add_argument("--accounts", type=int, default=20, help="basic member accounts per class (default 20)")
    p.add_argument("--secure", type=int, default=4, help="secure member accounts per class besides (default 4)")
    p.add_argument("--secure-only-accounts", type=int, default=6,
                   help="secure accounts of the Security Hub class, which has no basic ones (default 6; 0 skips the class)")
    p.add_argument("--setup-ahead", type=int, default=2,
                   help="classes set up at once before each is measured alone (default 2; 1: one class at a time)")
    p.add_argument("--no-overlap", dest="overlap", action="store_false",
                   help="measure the class whose run mostly waits (credentials expired for good) alone, not alongside the others")
    p.add_argument("--basic-opt-in", default="F03,F07,F08", help="features basic accounts opt in to (default F03,F07,F08)")
    p.add_argument("--absent-service", default="config", type=absent_service,
                   help="the service absent in every region of class 6: a botocore service name (config, accessanalyzer, "
                        "detective, ...) or the suffix of the SDK's variable AWS_ENDPOINT_URL_<SERVICE> (CONFIG_SERVICE, "
                        "ACCESSANALYZER, ...). Default config (AWS Config): every account should report F08 skipped "
                        "region_unavailable in every region, and secure accounts F13 (Security Hub, which requires F08) "
                        "skipped blocked_dependency; everything else converges")
    p.add_argument("--pending-seconds", type=float, default=30, help="Security Hub class: how long a new standard stays PENDING (default 30)")
    p.add_argument("--seed", type=int, default=1, help="seed of the emulator's fault draws (default 1)")
    p.add_argument("--parallel-accounts", type=int, default=16)
    p.add_argument("--max-calls", type=int, default=32)
    p.add_argument("--account-calls", type=int, default=4)
    p.add_argument("--max-attempts", type=int, default=8)
    p.add_argument("--timeout", type=float, default=900, help="a cm-baseline run still going after this many seconds is killed (default 900)")
    p.add_argument("--setup-workers", type=int, default=4)
    p.add_argument("--workdir", help="reports, logs and emulator logs (default: a new directory in /tmp)")
    p.add_argument("--doc", default="docs/fault-matrix.md", help="the Markdown written (relative to the repository; '' for none)")
    p.add_argument("--json", help="also write every figure as JSON to this file")
    args = p.parse_args()
    cwd = Path(args.cwd)
    repo = Path(args.repo).resolve()
    wanted = [k.strip() for k in args.classes.split(",") if k.strip()]
    unknown = set(wanted) - {c["key"] for c in CLASSES}
    if unknown:
        p.error(f"unknown classes: {sorted(unknown)}")
    if args.accounts < 0 or args.secure < 0 or args.accounts + args.secure < 1:
        p.error("--accounts and --secure: at least one account")
    base = (cwd / args.workdir).resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="cm-faultmatrix-"))
    base.mkdir(parents=True, exist_ok=True)
    binary = (cwd / args.binary).resolve()
    if not os.access(binary, os.X_OK):
        p.error(f"{binary} is not an executable")
    # A private copy: the binary at that path may be rebuilt while the matrix runs.
    args.binary = str(base / "cm-baseline")
    shutil.copy2(binary, args.binary)
    args.rss = "proc"
    digest = hashlib.sha256(Path(args.binary).read_bytes()).hexdigest()
    version = subprocess.run([args.binary, "--version"], capture_output=True, text=True).stdout.strip()
    try:
        source = subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.TimeoutExpired):
        source = "unknown"
    meta = {"started": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(), "binary": str(binary),
            "binary_version": version, "binary_sha256": digest,
            "binary_kind": "release" if "/release/" in str(binary) else "debug" if "/debug/" in str(binary) else "given",
            "binary_mtime": time.strftime("%Y-%m-%d %H:%M", time.localtime(binary.stat().st_mtime)), "source": source}
    log(f"== Fault matrix: {len(wanted)} classes, binary {binary} ({version}, sha256 {digest[:16]}), work directory {base}")
    t0 = time.monotonic()
    meta["load_average_at_start"] = list(os.getloadavg())
    rows = []
    done = {}  # class key -> rows

    def collect(cr):
        rows = cr.finish()
        for j, row in enumerate(rows):
            row["n"] = cr.cls["n"] + ("" if len(rows) == 1 else "ab"[j])
            log(f"   [{cr.cls['key']}] {row['run']}: converged {row['converged']}, partly {row['partly']}, failed {row['failed']}, "
                f"lost {len(row['lost'])}, customer touched {len(row['customer_touched'])}, wall {row.get('wall_s')} s")
        done[cr.cls["key"]] = rows
        log(f"   [{cr.cls['key']}] done at {time.monotonic() - t0:.0f} s")

    # Set-ups (emulator, Organization, initial run, drift) are not measured: `--setup-ahead`
    # classes are set up at once, then measured one after the other with nothing else
    # running. A class whose measured run mostly waits (credentials expired for good: the
    # product probes for minutes) goes first; once its run has gone quiet, the others are set
    # up and measured meanwhile, and it is checked at the end.
    selected = [c for c in CLASSES if c["key"] in wanted]
    if args.secure_only_accounts == 0:
        for c in [c for c in selected if c.get("secure_only")]:
            log(f"== [{c['key']}] skipped: no secure accounts (--secure-only-accounts 0)")
            selected.remove(c)
    selected.sort(key=lambda c: not (c.get("background") and args.overlap))
    waiting, live = [], []
    try:
        while selected:
            if selected[0].get("background") and args.overlap:
                batch = [selected.pop(0)]
            else:
                batch, selected = selected[:max(1, args.setup_ahead)], selected[max(1, args.setup_ahead):]
            crs = [ClassRun(c, args, base, repo) for c in batch]
            live.extend(crs)
            with ThreadPoolExecutor(len(crs)) as pool:
                for f in [pool.submit(cr.prepare) for cr in crs]:
                    f.result()
            for cr in crs:
                if cr.cls.get("background") and args.overlap:
                    thread = threading.Thread(target=cr.measure, daemon=True)
                    thread.start()
                    cr.overlapped = True
                    waiting.append((cr, thread))
                    quiet(cr.emu, thread)
                    log(f"   [{cr.cls['key']}] its run has gone quiet; it goes on alongside the next classes")
                    continue
                cr.measure()
                collect(cr)
        for cr, thread in waiting:
            thread.join()
            collect(cr)
    finally:
        for cr in live:
            cr.stop()
    rows = [row for c in CLASSES for row in done.get(c["key"], [])]
    meta["total_s"] = time.monotonic() - t0
    meta["load_average_at_end"] = list(os.getloadavg())
    print()
    print(md_table(rows))
    print()
    print(f"total {meta['total_s'] / 60:.1f} minutes; reports and logs: {base}")
    if args.doc:
        doc = repo / args.doc
        write_doc(doc, rows, meta, args)
        print(f"written: {doc}")
    if args.json:
        Path(cwd / args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=str) + "\n")
    bad = [r for r in rows if r["lost"] or r["customer_touched"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
