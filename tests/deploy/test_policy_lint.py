"""parliament (an IAM policy linter, independent of cm-baseline and of its emulator) over every
IAM policy document cm-baseline ships: desired-state/policies/**/*.json, with desired state's
`{placeholders}` filled in with plausible values, and deploy/iam/*.json, with their `<...>`
samples filled in likewise.

parliament runs as its command line does by default: its own auditors, not the optional
community ones, every finding of severity LOW and above. A finding fails the test unless it is
listed below:
- FALSE_POSITIVES: parliament is wrong about the document (it reads every document as an
  identity policy);
- REVIEWED: parliament is right (`"Resource": "*"` could be narrower; a role that writes a
  bucket's policy could grant itself the bucket's objects), and the statement stays as it is
  for the reason given; "review:" marks those worth tightening. A new finding fails until it
  is fixed or reviewed here.
Every entry must still match a finding (the lists do not outlive what they excuse).

Run from the repository root: `python -m pytest -q tests/deploy` (needs
tests/deploy/requirements.txt: parliament, pytest).
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import pytest
from parliament import analyze_policy_string, enhance_finding
from parliament.cli import is_finding_filtered

REPO = Path(__file__).resolve().parents[2]

# Documents under desired-state/policies/ that are not IAM policies.
NOT_POLICIES = {
    "desired-state/policies/statemachine/*.json": "Step Functions state machine definitions (Amazon States Language)",
}

# desired-state/README.md, "Placeholders": plausible values.
DESIRED_PLACEHOLDERS = {
    "account_id": "123456789012",
    "region": "ap-northeast-1",
    "home_region": "ap-northeast-1",
    "partition": "aws",
    "management_account_id": "210987654321",
}
# deploy/iam/*.json: the sample values an operator replaces (deploy/ecs/README.md).
DEPLOY_PLACEHOLDERS = {
    "announcement-bucket": "cm-baseline-announcements",
    "prefix": "cm-baseline/announcements",
    "journal-bucket": "cm-baseline-journal-large-values",
    "management-account-id": "210987654321",
    "region": "ap-northeast-1",
}

CM_MAINTENANCE = ("desired-state/policies/inline/CMMaintenancePolicy.json", "deploy/iam/CMMaintenancePolicy.json")
TRUST_POLICIES = ("desired-state/policies/trust/*.json", "deploy/iam/daemon-trust-ecs-task.json")

# (issue, file patterns, statement Sid or "*") -> why parliament is wrong here
FALSE_POSITIVES = {
    ("MALFORMED", TRUST_POLICIES, "*"):
        "a role's trust policy (AssumeRolePolicyDocument) takes no Resource: the resource is the role itself",
    ("RESOURCE_STAR", ("desired-state/policies/resource/logs-key-policy.json",), "*"):
        "in a KMS key policy, Resource \"*\" means the key the policy is attached to and nothing else",
}

# (issue, file patterns, statement Sid) -> why the statement keeps Resource "*"
REVIEWED = {
    ("RESOURCE_STAR", ("desired-state/policies/inline/CMConfigPolicy.json",), "EncryptWithLogsKey"):
        "the logs key's id is generated when F09 creates it; who may use it is decided by its key policy",
    ("RESOURCE_STAR", CM_MAINTENANCE, "Kms"):
        "keys have generated ids and cm-baseline must describe every key to find one of its own that lost its alias "
        "(docs/api-calls.md); review: the write actions could be limited to keys tagged cm:Members",
    ("RESOURCE_STAR", CM_MAINTENANCE, "CloudTrail"):
        "the trail's name comes from desired state and DescribeTrails/GetTrailStatus read the customer's trails "
        "for the quota; trails have no resource policy, so * is this account's trails",
    ("RESOURCE_STAR", CM_MAINTENANCE, "Ec2DefaultVpc"):
        "the default VPC, its subnets and internet gateway have generated ids and no tag to scope by; "
        "VPC resources have no resource policy, so * is this account's",
    ("RESOURCE_STAR", CM_MAINTENANCE, "GuardDuty"):
        "one detector per Region, with a generated id; detectors have no resource policy, so * is this account's",
    ("RESOURCE_STAR", CM_MAINTENANCE, "AccessAnalyzer"):
        "an analyzer's ARN names the analyzer desired state chooses, and ListAnalyzers finds the customer's "
        "for the one-per-type check; analyzers have no resource policy, so * is this account's",
    ("RESOURCE_STAR", CM_MAINTENANCE, "Detective"):
        "a behavior graph's ARN has a generated id; graphs have no resource policy, so * is this account's",
    ("RESOURCE_STAR", CM_MAINTENANCE, "SecurityHub"):
        "the hub, standards, controls, aggregators and automation rules are per-account singletons or have "
        "generated ids; Security Hub has no resource policies, so * is this account's",
    ("RESOURCE_STAR", CM_MAINTENANCE, "Config"):
        "the recorder and delivery channel are the account's one each per Region, the customer's included "
        "(read for conflicts); Config has no resource policy on them, so * is this account's",
    ("RESOURCE_STAR", CM_MAINTENANCE, "EventBridge"):
        "buses and rules are named by desired state (cm-*) in every Region; review: could be limited to "
        "arn:*:events:*:*:event-bus/cm-* and rule/cm-*",
    ("RESOURCE_STAR", CM_MAINTENANCE, "StepFunctions"):
        "state machines are named by desired state and ListStateMachines reads them all; Step Functions has "
        "no resource policy, so * is this account's",
    ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", CM_MAINTENANCE, "*"):
        "cm-baseline writes the policies and lifecycle of its own log buckets (cm-members-*, F07/F08), so it "
        "could grant itself their objects; review: an explicit Deny of s3:GetObject/PutObject/DeleteObject on "
        "them would close that (the CloudTrail bucket's objects are also under Object Lock COMPLIANCE)",
    ("RESOURCE_STAR", ("desired-state/policies/inline/OrganizationAccountAccessPolicy.json",), "PortalAccountInformation"):
        "the portal reads its own account and organization, whose ARNs contain the organization id, unknown here",
    ("RESOURCE_STAR", ("desired-state/policies/inline/OrganizationMovingPolicy.json",), "MoveBetweenOrganizations"):
        "the handshake that moves the account has an id the other organization generates",
    ("RESOURCE_STAR", ("desired-state/policies/inline/RIPurchasePolicy.json",), "PurchaseReservations"):
        "reservations are bought and modified by generated ids; the purpose is any reservation of the account",
    ("RESOURCE_STAR", ("desired-state/policies/inline/ViewBillingPolicy.json",), "ViewBilling"):
        "read-only billing views over every budget, cost category and anomaly monitor of the account",
}


def relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def policy_files() -> list[Path]:
    found = sorted(REPO.glob("desired-state/policies/**/*.json")) + sorted(REPO.glob("deploy/iam/*.json"))
    return [p for p in found if not any(fnmatch.fnmatch(relative(p), g) for g in NOT_POLICIES)]


def fill(value, path: str):
    """The document with its placeholders filled in (string values only, as desired state does)."""
    if isinstance(value, dict):
        return {k: fill(v, path) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, path) for v in value]
    if not isinstance(value, str):
        return value

    def desired(m: re.Match) -> str:
        assert m.group(1) in DESIRED_PLACEHOLDERS, f"{path}: unknown placeholder {m.group(0)}"
        return DESIRED_PLACEHOLDERS[m.group(1)]

    def sample(m: re.Match) -> str:
        assert m.group(1) in DEPLOY_PLACEHOLDERS, f"{path}: unknown sample value {m.group(0)}"
        return DEPLOY_PLACEHOLDERS[m.group(1)]

    value = re.sub(r"(?<!\$)\{([a-z0-9_]+)\}", desired, value)
    return re.sub(r"<([a-z0-9-]+)>", sample, value)


def statement_lines(text: str, doc: dict) -> list[tuple[int, str]]:
    """(first line, Sid) of each statement of `text`, the document dumped with indent=2."""
    statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    lines = text.splitlines()
    if isinstance(doc["Statement"], list):
        starts = [i + 1 for i, line in enumerate(lines) if line == "    {"]
    else:
        starts = [i + 1 for i, line in enumerate(lines) if line.startswith('  "Statement": {')]
    assert len(starts) == len(statements), "statements not found where json.dumps(indent=2) puts them"
    return [(start, st.get("Sid", "")) for start, st in zip(starts, statements)]


def findings(path: Path) -> list[tuple[str, str, object]]:
    """(issue, statement Sid or "", detail) of every finding parliament reports by default."""
    doc = fill(json.loads(path.read_text()), relative(path))
    text = json.dumps(doc, indent=2)
    sids = statement_lines(text, doc) if "Statement" in doc else []
    out = []
    for finding in analyze_policy_string(text, filepath=relative(path)).findings:
        finding = enhance_finding(finding)
        if is_finding_filtered(finding, "LOW"):
            continue
        line = finding.location.get("line") if isinstance(finding.location, dict) else None
        sid = next((s for start, s in reversed(sids) if line is not None and start <= line), "")
        out.append((finding.issue, sid, finding.detail))
    return out


def excused(issue: str, path: str, sid: str) -> str | None:
    for (want, patterns, want_sid), why in {**FALSE_POSITIVES, **REVIEWED}.items():
        if want == issue and any(fnmatch.fnmatch(path, p) for p in patterns) and want_sid in ("*", sid):
            return why
    return None


def test_there_are_policies():
    names = {relative(p) for p in policy_files()}
    assert "desired-state/policies/resource/logs-key-policy.json" in names
    assert "deploy/iam/CMMaintenancePolicy.json" in names
    assert not any(n.startswith("desired-state/policies/statemachine/") for n in names)


@pytest.mark.parametrize("path", policy_files(), ids=relative)
def test_parliament_finds_nothing_unexplained(path: Path):
    unexplained = [f"{issue} in statement {sid or '-'}: {detail}" for issue, sid, detail in findings(path)
                   if excused(issue, relative(path), sid) is None]
    assert not unexplained, f"{relative(path)}:\n" + "\n".join(unexplained)


def test_every_exception_still_matches_a_finding():
    seen = set()
    for path in policy_files():
        for issue, sid, _ in findings(path):
            seen.add((issue, relative(path), sid))
    for (issue, patterns, sid), why in {**FALSE_POSITIVES, **REVIEWED}.items():
        matched = any(i == issue and any(fnmatch.fnmatch(p, g) for g in patterns) and sid in ("*", s) for i, p, s in seen)
        assert matched, f"no finding left for ({issue}, {patterns}, {sid}): remove it ({why})"


def test_parliament_would_catch_a_broken_policy():
    bad = {"Version": "2012-10-17", "Statement": [
        {"Sid": "Typo", "Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::b/*"},
        {"Sid": "Star", "Effect": "Allow", "Action": "kms:PutKeyPolicy", "Resource": "*"},
    ]}
    found = [(f.issue, f.severity) for f in map(enhance_finding, analyze_policy_string(json.dumps(bad, indent=2)).findings)]
    issues = {issue for issue, severity in found if not severity == "MUTE"}
    assert {"UNKNOWN_ACTION", "RESOURCE_STAR"} <= issues, found
