"""The CloudFormation templates of deploy/cloudformation/.

1. cfn-lint passes on every template, without an error or a warning.
2. The member role of the bootstrap stack (cm-policymaintainer-init-prod) is the role that
   desired state defines for `member_role_name`, field by field: name and path, description,
   maximum session duration, every trust statement (principal, action, the external id
   condition), managed policies, every statement of every inline policy, and the
   `cm:Members` tag. Both sides are read from their files, with desired state's
   `{placeholders}` and the template's intrinsic functions filled in with the same values, so
   that a change to one without the other fails here instead of showing up as a role that
   cm-baseline rewrites (or cannot enter) in every new member account.
3. The journal stack (cm-baseline-journal) makes the table the daemon's DynamoDB journal
   expects: key schema exactly pk/sk, String, HASH/RANGE, on-demand, nothing else; and
   its output is the CM_JOURNAL value the deploy files use.

Run from the repository root: `python -m pytest -q tests/deploy` (needs
tests/deploy/requirements.txt: cfn-lint, PyYAML, pytest).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DESIRED = REPO / "desired-state"
CFN_DIR = REPO / "deploy" / "cloudformation"
BOOTSTRAP = CFN_DIR / "cm-policymaintainer-init-prod.yaml"
JOURNAL = CFN_DIR / "cm-baseline-journal.yaml"
TEMPLATE_SUFFIXES = (".yaml", ".yml", ".json", ".template")

# Stand-ins for the accounts; the same values go into desired state and into the template.
MANAGEMENT_ACCOUNT = "210987654321"
MEMBER_ACCOUNT = "123456789012"
SAMPLE_EXTERNAL_ID = "cm-test-external-id"

# Defaults of settings.yaml (desired-state/README.md, settings.yaml).
# Every IAM action of cm-baseline's calls in a member account (derived from the code by
# tests/iam_policy.rs): the lockout guard refuses a member role that does not allow them all.
GUARD_ACTIONS = REPO / "src/plan/guard-actions.txt"
DEFAULT_TAG = "Initialized"  # a tier that a feature's tag map does not name
OWNER_TAG_KEY = "cm:Members"


def templates() -> list[Path]:
    if not CFN_DIR.is_dir():
        return []
    return sorted(p for p in CFN_DIR.iterdir() if p.is_file() and p.name.endswith(TEMPLATE_SUFFIXES))


# ---------------------------------------------------------------------------------------
# cfn-lint


def cfn_lint_command() -> list[str]:
    beside = Path(sys.executable).parent / "cfn-lint"
    exe = str(beside) if beside.exists() else shutil.which("cfn-lint")
    if exe is None:
        pytest.fail("cfn-lint is not installed: pip install -r tests/deploy/requirements.txt")
    return [exe]


def settings() -> dict:
    return yaml.safe_load((DESIRED / "settings.yaml").read_text()) or {}


def run_cfn_lint(path: Path) -> subprocess.CompletedProcess:
    # Linted for the home region, where the StackSet's instances are deployed.
    return subprocess.run(
        [*cfn_lint_command(), "--format", "parseable", "--regions", settings()["home_region"], "--", str(path)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )


def lint_failed(proc: subprocess.CompletedProcess) -> bool:
    # cfn-lint's exit code is a bit mask: 2 error, 4 warning, 8 informational; anything else
    # (1, or a traceback) means it did not run through. Informational findings pass.
    return proc.returncode not in (0, 8)


def test_there_are_templates():
    # Both are linted by test_cfn_lint_finds_no_error_or_warning below.
    for path in (BOOTSTRAP, JOURNAL):
        assert path in templates(), f"{path.relative_to(REPO)} is missing"


@pytest.mark.parametrize("path", templates(), ids=lambda p: p.name)
def test_cfn_lint_finds_no_error_or_warning(path: Path):
    proc = run_cfn_lint(path)
    assert not lint_failed(proc), (
        f"cfn-lint {path.relative_to(REPO)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}"
    )


def test_cfn_lint_would_catch_a_broken_template(tmp_path: Path):
    """The lint test is not vacuous: cfn-lint fails a role without a trust policy."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "AWSTemplateFormatVersion: '2010-09-09'\n"
        "Resources:\n"
        "  Role:\n"
        "    Type: AWS::IAM::Role\n"
        "    Properties:\n"
        "      RoleName: nope\n"
    )
    assert lint_failed(run_cfn_lint(bad))


# ---------------------------------------------------------------------------------------
# Desired state: the member role, placeholders filled in


PLACEHOLDER = re.compile(r"(?<!\$)\{([a-z0-9_]+)\}")


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class Context:
    """The values both sides are filled in with."""

    def __init__(self, partition: str, external_id: str):
        s = settings()
        self.partition = partition
        self.external_id = external_id
        self.home_region = s["home_region"]
        builtin = {
            "account_id": MEMBER_ACCOUNT,
            "region": self.home_region,  # the region of a global resource's instance
            "home_region": self.home_region,
            "partition": partition,
            "management_account_id": MANAGEMENT_ACCOUNT,
        }
        # A variable cannot override a built-in placeholder.
        self.placeholders = {**(s.get("variables") or {}), **builtin}

    def fill(self, value):
        """Desired state's placeholders, in string values only (not in mapping keys)."""
        if isinstance(value, str):

            def one(m: re.Match) -> str:
                if m.group(1) not in self.placeholders:
                    raise AssertionError(f"unknown placeholder {m.group(0)} in {value!r}")
                return str(self.placeholders[m.group(1)])

            return PLACEHOLDER.sub(one, value)
        if isinstance(value, list):
            return [self.fill(v) for v in value]
        if isinstance(value, dict):
            return {k: self.fill(v) for k, v in value.items()}
        return value


def the_configured_external_id() -> str:
    return settings().get("external_id") or ""


# Two contexts: the real one (partition of the home region, external id of settings.yaml),
# and one with another partition, which shows that the template puts AWS::Partition exactly
# where desired state has {partition}.
CONTEXTS = {
    "settings": lambda: Context(partition_of(settings()["home_region"]), the_configured_external_id()),
    "aws-cn": lambda: Context("aws-cn", the_configured_external_id()),
}


def feature_files() -> list[Path]:
    return sorted(p for p in (DESIRED / "features").iterdir() if p.suffix in (".yaml", ".yml"))


def member_role_entry() -> tuple[dict, dict, Path]:
    """The one `iam_role` entry named `member_role_name`, with its feature and file."""
    name = settings()["member_role_name"]
    found = []
    for path in feature_files():
        feature = yaml.safe_load(path.read_text()) or {}
        for entry in feature.get("resources") or []:
            role = entry.get("iam_role")
            if role is not None and role.get("name") == name:
                found.append((entry, feature, path))
    assert len(found) == 1, (
        f"desired state must define the member role {name} exactly once (one role for every "
        f"tier), found {len(found)}: {[str(p.relative_to(REPO)) for _, _, p in found]}"
    )
    entry, feature, path = found[0]
    assert entry.get("ensure", "present") == "present", f"{path}: the member role cannot be absent"
    assert "tiers" not in entry, f"{path}: a per-tier member role cannot be bootstrapped by one template"
    assert entry.get("regions", "global") == "global", f"{path}: the member role is global"
    return entry, feature, path


def policy_doc(value) -> dict:
    """A policy field of desired state: a path to a JSON file, or the document inline."""
    if isinstance(value, str):
        return json.loads((DESIRED / value).read_text())
    return value


def desired_role(ctx: Context) -> dict:
    entry, feature, _ = member_role_entry()
    role = entry["iam_role"]
    return {
        "name": ctx.fill(role["name"]),
        "description": ctx.fill(role.get("description")),
        "max_session_duration": role.get("max_session_duration"),
        "trust_policy": ctx.fill(policy_doc(role["trust_policy"])),
        "managed_policies": sorted(ctx.fill(role.get("managed_policies") or [])),
        "inline_policies": {n: ctx.fill(policy_doc(d)) for n, d in (role.get("inline_policies") or {}).items()},
        "tag": feature_tag(feature),
    }


def feature_tag(feature: dict) -> str:
    """The feature's `cm:Members` value: one for every tier, since there is one role."""
    tag = feature["tag"]
    if isinstance(tag, str):
        return tag
    tiers = yaml.safe_load((DESIRED / "tiers.yaml").read_text()) or {}
    values = {tag.get(t, DEFAULT_TAG) for t in tiers}
    assert len(values) == 1, f"feature {feature['id']} tags the member role differently per tier: {tag}"
    return values.pop()


# ---------------------------------------------------------------------------------------
# The template: intrinsic functions filled in


class NoValue:
    pass


NO_VALUE = NoValue()


class Template:
    def __init__(self, path: Path, ctx: Context, parameters: dict[str, str]):
        self.doc = load_template(path)
        self.ctx = ctx
        self.refs = {
            "AWS::Partition": ctx.partition,
            "AWS::AccountId": MEMBER_ACCOUNT,
            "AWS::Region": ctx.home_region,
            "AWS::URLSuffix": "amazonaws.com.cn" if ctx.partition == "aws-cn" else "amazonaws.com",
        }
        for name, spec in (self.doc.get("Parameters") or {}).items():
            if name in parameters:
                self.refs[name] = parameters[name]
            else:
                assert "Default" in spec, f"parameter {name} has no default and no value here"
                self.refs[name] = spec["Default"]
        self.conditions = {}
        for name, cond in (self.doc.get("Conditions") or {}).items():
            self.conditions[name] = self.eval(cond)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = self.eval(self.doc["Conditions"][name])
        return self.conditions[name]

    def sub(self, text: str, extra: dict) -> str:
        def one(m: re.Match) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in extra:
                return str(extra[inner])
            if inner in self.refs:
                return str(self.refs[inner])
            raise AssertionError(f"Fn::Sub: unknown ${{{inner}}} in {text!r}")

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def eval(self, node):
        if isinstance(node, list):
            return [v for v in (self.eval(x) for x in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, arg), = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                assert arg in self.refs, f"Ref to {arg}, which this test does not know"
                return self.refs[arg]
            if key == "Fn::Sub":
                if isinstance(arg, str):
                    return self.sub(arg, {})
                text, variables = arg
                return self.sub(text, {k: self.eval(v) for k, v in variables.items()})
            if key == "Fn::If":
                name, then, otherwise = arg
                return self.eval(then if self.condition(name) else otherwise)
            if key == "Fn::Equals":
                a, b = (self.eval(x) for x in arg)
                return a == b
            if key == "Fn::Not":
                return not self.eval(arg[0])
            if key == "Fn::And":
                return all(self.eval(x) for x in arg)
            if key == "Fn::Or":
                return any(self.eval(x) for x in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::Join":
                sep, items = arg
                return sep.join(str(x) for x in self.eval(items))
            assert not key.startswith("Fn::"), f"{key}: an intrinsic function this test does not evaluate"
        out = {}
        for k, v in node.items():
            v = self.eval(v)
            if v is not NO_VALUE:
                out[k] = v
        return out

    def role(self, role_name: str) -> tuple[dict, dict]:
        """The AWS::IAM::Role named `role_name`: (its resource entry, its evaluated Properties)."""
        found = [
            r
            for r in (self.doc.get("Resources") or {}).values()
            if r.get("Type") == "AWS::IAM::Role" and (r.get("Properties") or {}).get("RoleName") == role_name
        ]
        assert len(found) == 1, f"the template must create the role {role_name} exactly once, found {len(found)}"
        resource = found[0]
        if "Condition" in resource:
            assert self.condition(resource["Condition"]), f"the role {role_name} is not created here"
        return resource, self.eval(resource["Properties"])


def load_template(path: Path) -> dict:
    text = path.read_text()
    if path.suffix == ".json":
        return json.loads(text)
    # safe_load refuses tags such as !Sub: the template must stay plain YAML.
    return yaml.safe_load(text)


def template_role(ctx: Context, external_id: str | None = None) -> dict:
    tpl = Template(
        BOOTSTRAP,
        ctx,
        {
            "ManagementAccountId": MANAGEMENT_ACCOUNT,
            "ExternalId": ctx.external_id if external_id is None else external_id,
        },
    )
    _, props = tpl.role(settings()["member_role_name"])
    tags = props.get("Tags") or []
    return {
        "name": props["RoleName"],
        "path": props.get("Path", "/"),
        "description": props.get("Description"),
        "max_session_duration": props.get("MaxSessionDuration"),
        "trust_policy": props["AssumeRolePolicyDocument"],
        "managed_policies": sorted(props.get("ManagedPolicyArns") or []),
        "inline_policies": {p["PolicyName"]: p["PolicyDocument"] for p in props.get("Policies") or []},
        "tags": tags,
    }


# ---------------------------------------------------------------------------------------
# The comparison, field by field


def difference(where: str, want, got) -> str:
    text = f"{where}: desired state {want!r}, template {got!r}"
    if isinstance(want, list) and isinstance(got, list):
        missing = [x for x in want if x not in got]
        extra = [x for x in got if x not in want]
        text += f" (missing from the template: {missing}, only in the template: {extra})" if missing or extra else " (order)"
    return text


def statement_differences(what: str, want: dict, got: dict) -> list[str]:
    """Every difference between two policy documents, statement by statement."""
    diffs = []
    for key in sorted(set(want) | set(got)):
        if key != "Statement" and want.get(key) != got.get(key):
            diffs.append(difference(f"{what}.{key}", want.get(key), got.get(key)))
    ws, gs = want.get("Statement", []), got.get("Statement", [])
    ws = ws if isinstance(ws, list) else [ws]
    gs = gs if isinstance(gs, list) else [gs]
    if len(ws) != len(gs):
        diffs.append(
            f"{what}: desired state has {len(ws)} statements "
            f"{[s.get('Sid') for s in ws]}, template {len(gs)} {[s.get('Sid') for s in gs]}"
        )
    for i, (w, g) in enumerate(zip(ws, gs)):
        label = f"{what}.Statement[{i}]" + (f" ({w.get('Sid')})" if w.get("Sid") else "")
        for key in sorted(set(w) | set(g)):
            if w.get(key) != g.get(key):
                diffs.append(difference(f"{label}.{key}", w.get(key), g.get(key)))
    return diffs


@pytest.fixture(params=sorted(CONTEXTS), ids=lambda k: f"partition-{k}")
def ctx(request) -> Context:
    return CONTEXTS[request.param]()


@pytest.mark.parametrize("path", [BOOTSTRAP, JOURNAL], ids=lambda p: p.name)
def test_template_is_plain_yaml(path: Path):
    """Long-form intrinsics (Fn::Sub:, Ref:) only: a plain YAML loader reads the template."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.constructor.ConstructorError as e:
        pytest.fail(f"not plain YAML (write Fn::Sub: instead of !Sub): {e}")
    assert isinstance(doc, dict)


def test_template_names_no_account_region_or_partition():
    """A StackSet deploys the same template everywhere: no account, region or partition in it."""
    doc = load_template(BOOTSTRAP)
    regionlike = re.compile(r"\b(?:[a-z]{2}|us-gov|cn)-(?:north|south|east|west|central|northeast|southeast|northwest|southwest)-\d\b")
    found = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{where}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{where}[{i}]")
        elif isinstance(node, str):
            if re.search(r"(?<!\d)\d{12}(?!\d)", node) or regionlike.search(node) or re.search(r"arn:aws(-[a-z]+)*:", node):
                found.append(f"{where}: {node!r}")

    walk(doc, "template")
    assert not found, "hard-coded account, region or partition:\n" + "\n".join(found)


def test_role_name_and_path(ctx: Context):
    want, got = desired_role(ctx), template_role(ctx)
    assert got["name"] == want["name"] == settings()["member_role_name"]
    # cm-baseline assumes arn:...:role/<member_role_name>: a role under another path is not it.
    assert got["path"] == "/"


def test_description(ctx: Context):
    assert template_role(ctx)["description"] == desired_role(ctx)["description"]


def test_max_session_duration(ctx: Context):
    # Left out of desired state: left out of the template too (AWS's default, one hour).
    assert template_role(ctx)["max_session_duration"] == desired_role(ctx)["max_session_duration"]


def test_trust_policy_with_the_configured_external_id(ctx: Context):
    """With the external id of settings.yaml (none: the parameter left empty), the trust
    policy is desired state's, statement by statement."""
    want, got = desired_role(ctx), template_role(ctx)
    diffs = statement_differences("trust_policy", want["trust_policy"], got["trust_policy"])
    assert not diffs, "\n".join(diffs)


def test_trust_policy_shape(ctx: Context):
    """The statement that lets the management account in: who, what, and the condition that
    the ExternalId parameter adds (and only that), whatever settings.yaml says."""
    want = desired_role(ctx)["trust_policy"]
    mgmt_arn = f"arn:{ctx.partition}:iam::{MANAGEMENT_ACCOUNT}:root"
    for external_id in ("", SAMPLE_EXTERNAL_ID):
        got = template_role(ctx, external_id=external_id)["trust_policy"]
        stmts = got["Statement"]
        assert len(stmts) == len(want["Statement"])
        for w, g in zip(want["Statement"], stmts):
            assert g["Effect"] == "Allow" and g["Action"] == "sts:AssumeRole"
            assert g["Principal"] == {"AWS": mgmt_arn} == w["Principal"]
            without_condition = {k: v for k, v in g.items() if k != "Condition"}
            assert without_condition == {k: v for k, v in w.items() if k != "Condition"}
            if external_id:
                assert g["Condition"] == {"StringEquals": {"sts:ExternalId": external_id}}
            else:
                assert "Condition" not in g


def test_managed_policies(ctx: Context):
    assert template_role(ctx)["managed_policies"] == desired_role(ctx)["managed_policies"]


def test_inline_policies_statement_by_statement(ctx: Context):
    want, got = desired_role(ctx)["inline_policies"], template_role(ctx)["inline_policies"]
    diffs = []
    if set(want) != set(got):
        diffs.append(f"inline policy names: desired state {sorted(want)}, template {sorted(got)}")
    for name in sorted(set(want) & set(got)):
        diffs += statement_differences(f"inline_policies.{name}", want[name], got[name])
    assert not diffs, "\n".join(diffs)


def test_owner_tag(ctx: Context):
    tags = template_role(ctx)["tags"]
    owner = [t["Value"] for t in tags if t["Key"] == OWNER_TAG_KEY]
    assert owner == [desired_role(ctx)["tag"]], f"{OWNER_TAG_KEY} tags: {tags}"


def _actions(stmt: dict) -> list[str]:
    a = stmt.get("Action", [])
    return [a] if isinstance(a, str) else a


def _matches(patterns: list[str], action: str) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), p.lower()) for p in patterns)


def test_the_bootstrapped_role_passes_the_lockout_guard(ctx: Context):
    """What the stack creates already lets cm-baseline in and lets it repair the role
    (the rules of src/plan/guard.rs), with the external id of settings.yaml."""
    role = template_role(ctx)
    configured = the_configured_external_id()

    def trusts(s: dict) -> bool:
        principals = s.get("Principal")
        aws = principals.get("AWS", []) if isinstance(principals, dict) else [principals]
        aws = [aws] if isinstance(aws, str) else aws
        # The whole management account: whichever of its roles runs the daemon is let in.
        return any(p == MANAGEMENT_ACCOUNT or p.endswith(f":iam::{MANAGEMENT_ACCOUNT}:root") for p in aws)

    stmts = role["trust_policy"]["Statement"]
    assert not any(s["Effect"] == "Deny" and _matches(_actions(s), "sts:AssumeRole") and trusts(s) for s in stmts)
    assert any(
        s["Effect"] == "Allow"
        and _matches(_actions(s), "sts:AssumeRole")
        and trusts(s)
        # no sts:ExternalId condition, or the one settings.yaml configures
        and s.get("Condition", {}).get("StringEquals", {}).get("sts:ExternalId", configured) == configured
        for s in stmts
    ), "the management account could not assume the role"

    inline = [s for doc in role["inline_policies"].values() for s in doc["Statement"]]
    lines = GUARD_ACTIONS.read_text().splitlines()
    required = [a.strip() for a in lines if a.strip() and not a.startswith("#")]
    assert "ec2:DescribeRegions" in required and len(required) > 100, required
    required += (settings().get("lockout_guard") or {}).get("required_actions") or []
    lost = [
        a
        for a in required
        if any(s["Effect"] == "Deny" and _matches(_actions(s), a) for s in inline)
        or not any(s["Effect"] == "Allow" and _matches(_actions(s), a) for s in inline)
    ]
    assert not lost, f"the role's inline policies do not allow {lost}"


def test_role_outlives_its_stack():
    """Deleting the stack (allowed to customers, specification 4.1.3) keeps the role."""
    doc = load_template(BOOTSTRAP)
    (resource,) = [
        r
        for r in doc["Resources"].values()
        if r.get("Type") == "AWS::IAM::Role"
        and r.get("Properties", {}).get("RoleName") == settings()["member_role_name"]
    ]
    assert resource.get("DeletionPolicy") == "Retain"
    assert resource.get("UpdateReplacePolicy") == "Retain"


# ---------------------------------------------------------------------------------------
# The journal stack


def journal_resource(type_: str) -> dict:
    doc = load_template(JOURNAL)
    (found,) = [r for r in doc["Resources"].values() if r.get("Type") == type_]
    return found


def test_journal_table_key_schema():
    """Exactly the table the DynamoDB journal opens: pk/sk, both String, HASH/RANGE,
    on-demand, and no index (the daemon's DescribeTable at open refuses another shape)."""
    table = journal_resource("AWS::DynamoDB::Table")
    props = table["Properties"]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == [
        {"AttributeName": "pk", "AttributeType": "S"},
        {"AttributeName": "sk", "AttributeType": "S"},
    ]
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in props
    for extra in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes", "TimeToLiveSpecification"):
        assert extra not in props, f"the journal table has no {extra}"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"]["SSEEnabled"] is True
    assert {"Key": "app", "Value": "cm-baseline"} in props["Tags"]
    assert not any(t["Key"] == OWNER_TAG_KEY for t in props["Tags"]), "the operator's resource, not a member's"


def test_journal_outlives_its_stack():
    for type_ in ("AWS::DynamoDB::Table", "AWS::S3::Bucket"):
        resource = journal_resource(type_)
        assert resource.get("DeletionPolicy") == "Retain", type_
        assert resource.get("UpdateReplacePolicy") == "Retain", type_


def test_journal_setting_output():
    """The CM_JOURNAL value, as deploy/ecs/task-definition.json spells it with placeholders."""
    outputs = load_template(JOURNAL)["Outputs"]
    assert outputs["JournalSetting"]["Value"] == {"Fn::Sub": "dynamodb:${Table},s3://${Bucket}/journal/"}
    task = json.loads((REPO / "deploy/ecs/task-definition.json").read_text())
    env = {e["name"]: e["value"] for c in task["containerDefinitions"] for e in c.get("environment", [])}
    assert env.get("CM_JOURNAL") == "dynamodb:cm-baseline-journal,s3://<journal-bucket>/journal/"
