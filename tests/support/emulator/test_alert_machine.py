"""F15's state machine cm-sharpening-security-alert-machine, executed: the shipped definition,
with its placeholders filled in as cm-baseline fills them, runs in the ASL interpreter of
asl.py on AWS's documented sample events (fixtures/alert_machine/, sources in SOURCES.md),
and the alert it puts on the aggregator bus is compared field by field.

Run: <emulator venv>/bin/python -m pytest -q tests/support/emulator/test_alert_machine.py
"""

import copy
import json
import re
from pathlib import Path

import pytest
import yaml

import asl

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
DESIRED = REPO / "desired-state"
FIXTURES = HERE / "fixtures" / "alert_machine"
DEFINITION = DESIRED / "policies" / "statemachine" / "cm-sharpening-security-alert-machine.json"
F15 = DESIRED / "features" / "F15-alert-routing.yaml"

# The member account the machine runs in, as cm-baseline's desired state describes it.
MEMBER = {
    "account_id": "111122223333",
    "account_name": "Example Corp (secure)",
    "home_region": "us-east-1",
    "region": "us-east-1",
    "partition": "aws",
    "management_account_id": "999999999999",
}
BUS_ARN = "arn:aws:events:us-east-1:111122223333:event-bus/cm-security-alert-aggregator-bus"
PLACEHOLDER = re.compile(r"(?<!\$)\{([a-z0-9_]+)\}")


def substitute(value, variables):
    """What src/desired/resolve.rs does to a resource: `{name}` replaced in every string
    value (keys untouched), for each known name."""
    if isinstance(value, str):
        for name, v in sorted(variables.items()):
            value = value.replace("{" + name + "}", v)
        return value
    if isinstance(value, list):
        return [substitute(x, variables) for x in value]
    if isinstance(value, dict):
        return {k: substitute(x, variables) for k, x in value.items()}
    return value


def definition(**overrides):
    return substitute(json.loads(DEFINITION.read_text()), {**MEMBER, **overrides})


def event(name):
    return json.loads((FIXTURES / name).read_text())


def execute(evt, recorder=None, **overrides):
    recorder = recorder if recorder is not None else asl.EventBridgeRecorder()
    return asl.run(definition(**overrides), evt, recorder), recorder


def published(evt, **overrides):
    """The single PutEvents entry the machine sends for `evt`, Detail parsed."""
    ex, rec = execute(evt, **overrides)
    assert ex.status == "SUCCEEDED", (ex.error, ex.cause, ex.visited)
    assert len(rec.requests) == 1, rec.requests
    (entry,) = rec.requests[0]["Entries"]
    assert set(entry) == {"EventBusName", "Source", "DetailType", "Detail"}, entry
    return entry, json.loads(entry["Detail"]), ex


def assert_alert(evt, expected, **overrides):
    entry, detail, ex = published(evt, **overrides)
    assert entry["Source"] == "cm-members.security-alert"
    assert entry["DetailType"] == "Security Alert"
    assert entry["EventBusName"] == overrides.get("bus", BUS_ARN)
    assert set(detail) == set(expected), sorted(set(detail) ^ set(expected))
    for field, value in expected.items():
        assert detail[field] == value, f"{field}: {detail[field]!r} != {value!r}"
    return ex


# ---------------------------------------------------------------------------------------
# The three documented samples


def test_guardduty_finding_becomes_an_alert():
    assert_alert(event("guardduty-finding.json"), {
        "account_id": "111122223333",
        "account_name": "Example Corp (secure)",
        "region": "us-east-1",
        "source": "guardduty",
        "severity": "MEDIUM",  # severity 5
        "title": "Unusual user permission reconnaissance activity by testuser.",
        "resource": "ASIASZ4SI7REEEXAMPLE",  # resourceType AccessKey: the access key id
        "console_link": "https://console.aws.amazon.com/guardduty/home?region=us-east-1"
                        "#/findings?macros=current&fId=1ab92989eaf0e742df4a014d5example",
        "original_event_id": "cd2d702e-ab31-411b-9344-793ce56b1bc7",
    })


def test_security_hub_finding_becomes_an_alert():
    ex = assert_alert(event("securityhub-findings-imported.json"), {
        "account_id": "193043430472",
        "account_name": "Example Corp (secure)",
        "region": "us-east-1",  # the finding has no Region: the region that sent the event
        "source": "securityhub",
        "severity": "MEDIUM",
        "title": "199.241.229.197 is performing SSH brute force attacks against i-0c10c2c7863d1a356.",
        "resource": "arn:aws:ec2:us-east-1:193043430472:instance/i-0c10c2c7863d1a356",
        "console_link": "https://console.aws.amazon.com/securityhub/home?region=us-east-1"
                        "#/findings?search=Id%3D%255Coperator%255C%253AEQUALS%255C%253A"
                        "arn:aws:guardduty:us-east-1:193043430472:detector/d4b040365221be2b54a6264dc9a4bc64"
                        "/finding/46ba0ac2845071e23ccdeb2ae03bfdea",
        "original_event_id": "CWE-event-id",
    })
    assert "Security Hub event region" in ex.visited


def test_access_analyzer_finding_becomes_an_alert():
    assert_alert(event("access-analyzer-finding.json"), {
        "account_id": "111122223333",
        "account_name": "Example Corp (secure)",
        "region": "us-west-2",
        "source": "access-analyzer",
        "severity": "HIGH",  # isPublic false: access from outside the zone of trust
        "title": "Access from outside the zone of trust: arn:aws:s3:::my-bucket (AWS::S3::Bucket)",
        "resource": "arn:aws:s3:::my-bucket",
        "console_link": "https://console.aws.amazon.com/access-analyzer/home?region=us-west-2"
                        "#/findings/details/MyAnalyzer/22222222-dcba-4444-dcba-333333333333",
        "original_event_id": "11111111-2222-4444-aaaa-333333333333",
    })


def test_the_execution_output_keeps_the_alert_and_the_published_event_id():
    ex, _ = execute(event("access-analyzer-finding.json"))
    assert ex.output["published"] == {"event_id": "recorded-1-0"}
    assert ex.output["source"] == "access-analyzer"


# ---------------------------------------------------------------------------------------
# Severity: one scale for the three services


@pytest.mark.parametrize("score,level", [
    (1.0, "LOW"), (3.9, "LOW"), (4.0, "MEDIUM"), (6.9, "MEDIUM"),
    (7.0, "HIGH"), (8.9, "HIGH"), (9.0, "CRITICAL"), (10, "CRITICAL"),
])
def test_guardduty_severity_bands(score, level):
    evt = event("guardduty-finding.json")
    evt["detail"]["severity"] = score  # derived: severity changed
    _, detail, _ = published(evt)
    assert detail["severity"] == level


def test_guardduty_severity_that_is_not_a_number_fails_the_execution():
    evt = event("guardduty-finding.json")
    evt["detail"]["severity"] = "5"
    ex, rec = execute(evt)
    assert (ex.status, ex.error) == ("FAILED", "cm.UnexpectedSeverity")
    assert rec.requests == []


@pytest.mark.parametrize("label,level", [
    ("CRITICAL", "CRITICAL"), ("HIGH", "HIGH"), ("MEDIUM", "MEDIUM"), ("LOW", "LOW"), ("INFORMATIONAL", "LOW"),
])
def test_security_hub_labels(label, level):
    evt = event("securityhub-findings-imported.json")
    evt["detail"]["findings"][0]["Severity"]["Label"] = label  # derived: label changed
    _, detail, _ = published(evt)
    assert detail["severity"] == level


def test_security_hub_unknown_label_fails_the_execution():
    evt = event("securityhub-findings-imported.json")
    evt["detail"]["findings"][0]["Severity"]["Label"] = "URGENT"
    ex, rec = execute(evt)
    assert (ex.status, ex.error) == ("FAILED", "cm.UnexpectedSeverity")
    assert rec.requests == []


def test_access_analyzer_public_finding_is_critical():
    evt = event("access-analyzer-finding.json")
    evt["detail"]["isPublic"] = True  # derived: isPublic changed
    _, detail, _ = published(evt)
    assert detail["severity"] == "CRITICAL"
    assert detail["title"] == "Public access: arn:aws:s3:::my-bucket (AWS::S3::Bucket)"


def test_access_analyzer_error_finding_is_medium():
    _, detail, _ = published(event("access-analyzer-error-finding.json"))
    assert detail["severity"] == "MEDIUM"
    assert detail["title"] == "Access not analyzed (ACCESS_DENIED): arn:aws:s3:::my-bucket (AWS::S3::Bucket)"
    assert detail["resource"] == "arn:aws:s3:::my-bucket"


def test_access_analyzer_deleted_finding_is_no_alert():
    evt = event("access-analyzer-finding.json")
    evt["detail"]["isDeleted"] = True  # derived: isDeleted changed
    ex, rec = execute(evt)
    assert ex.status == "SUCCEEDED" and ex.visited[-1] == "Deleted finding"
    assert rec.requests == []


# ---------------------------------------------------------------------------------------
# Region, resource, partition


def test_security_hub_finding_region_wins_over_the_event_region():
    evt = event("securityhub-findings-imported.json")
    evt["detail"]["findings"][0]["Region"] = "eu-west-1"  # derived: aggregated from eu-west-1
    _, detail, _ = published(evt)
    assert detail["region"] == "eu-west-1"
    # The console link opens the region that sent the event, where the finding is shown.
    assert detail["console_link"].startswith("https://console.aws.amazon.com/securityhub/home?region=us-east-1#")


@pytest.mark.parametrize("resource,expected", [
    ({"resourceType": "Instance", "instanceDetails": {"instanceId": "i-0c10c2c7863d1a356"}}, "i-0c10c2c7863d1a356"),
    ({"resourceType": "S3Bucket", "s3BucketDetails": [{"arn": "arn:aws:s3:::my-bucket", "name": "my-bucket"}]},
     "arn:aws:s3:::my-bucket"),
    ({"resourceType": "EKSCluster", "eksClusterDetails": {"arn": "arn:aws:eks:us-east-1:111122223333:cluster/c"}},
     "arn:aws:eks:us-east-1:111122223333:cluster/c"),
    ({"resourceType": "Lambda", "lambdaDetails": {"functionArn": "arn:aws:lambda:us-east-1:111122223333:function:f"}},
     "arn:aws:lambda:us-east-1:111122223333:function:f"),
    ({"resourceType": "Container", "containerDetails": {"id": "abc"}}, "Container"),
])
def test_guardduty_main_resource_by_resource_type(resource, expected):
    evt = event("guardduty-finding.json")
    evt["detail"]["resource"] = resource  # derived: resource changed
    _, detail, _ = published(evt)
    assert detail["resource"] == expected


@pytest.mark.parametrize("partition,host", [
    ("aws-cn", "https://console.amazonaws.cn"),
    ("aws-us-gov", "https://console.amazonaws-us-gov.com"),
])
def test_console_link_and_calls_follow_the_partition(partition, host):
    evt = event("guardduty-finding.json")
    ex, rec = execute(evt, partition=partition)
    assert ex.status == "SUCCEEDED", (ex.error, ex.cause)
    (request,) = rec.requests
    assert request["Resource"] == f"arn:{partition}:states:::events:putEvents"
    (entry,) = request["Entries"]
    assert entry["EventBusName"] == f"arn:{partition}:events:us-east-1:111122223333:event-bus/cm-security-alert-aggregator-bus"
    assert json.loads(entry["Detail"])["console_link"].startswith(host + "/guardduty/home?region=us-east-1#")


# ---------------------------------------------------------------------------------------
# What the machine does not shape, and failures


@pytest.mark.parametrize("source,detail_type", [
    ("aws.macie", "Macie Finding"),
    ("aws.guardduty", "GuardDuty Runtime Protection Healthy"),
    ("aws.access-analyzer", "Access Preview State Change"),
    ("aws.securityhub", "Security Hub Findings - Custom Action"),
])
def test_unknown_event_goes_to_the_fail_state(source, detail_type):
    evt = event("access-analyzer-finding.json")
    evt["source"], evt["detail-type"] = source, detail_type
    ex, rec = execute(evt)
    assert (ex.status, ex.error) == ("FAILED", "cm.UnknownEvent")
    assert ex.visited[-1] == "Unknown event"
    assert rec.requests == []


def test_finding_missing_a_field_fails_as_step_functions_would():
    evt = event("guardduty-finding.json")
    del evt["detail"]["title"]
    ex, rec = execute(evt)
    assert (ex.status, ex.error) == ("FAILED", "States.Runtime")
    assert rec.requests == []


def test_publish_is_retried_when_eventbridge_fails():
    rec = asl.EventBridgeRecorder(fail=["EventBridge.EventBridgeException", "EventBridge.FailedEntry"])
    ex, _ = execute(event("guardduty-finding.json"), recorder=rec)
    assert ex.status == "SUCCEEDED"
    assert len(rec.requests) == 3
    assert rec.requests[0] == rec.requests[2]
    assert [wait for _, _, wait in ex.retries] == [2.0, 4.0]


def test_publish_gives_up_after_five_retries():
    rec = asl.EventBridgeRecorder(fail=["EventBridge.EventBridgeException"] * 10)
    ex, _ = execute(event("guardduty-finding.json"), recorder=rec)
    assert (ex.status, ex.error) == ("FAILED", "EventBridge.EventBridgeException")
    assert len(rec.requests) == 6


# ---------------------------------------------------------------------------------------
# The definition, statically, and with the rest of F15


def test_definition_is_valid_asl():
    asl.validate(definition())
    d = definition()
    assert d["StartAt"] in d["States"]
    terminal = {n for n, s in d["States"].items() if s["Type"] in ("Fail", "Succeed") or s.get("End")}
    assert terminal == {"Publish", "Unknown event", "Unexpected severity", "Deleted finding"}
    # The Rust integration test reads the bus from this state.
    assert d["States"]["Publish"]["Parameters"]["Entries"][0]["EventBusName"] == BUS_ARN


def test_placeholders_are_the_products_and_account_name():
    text = DEFINITION.read_text()
    load_rs = (REPO / "src" / "desired" / "load.rs").read_text()
    builtin = set(re.findall(r'"([a-z_]+)"', re.search(r"BUILTIN_PLACEHOLDERS[^=]*=\s*\[([^\]]*)\]", load_rs).group(1)))
    used = set(PLACEHOLDER.findall(text))
    assert used - builtin <= {"account_name"}, used - builtin
    assert "account_name" in used
    assert not PLACEHOLDER.findall(json.dumps(definition()))


def f15_resources(kind):
    feature = yaml.safe_load(F15.read_text())
    return [r[kind] for r in feature["resources"] if kind in r]


def test_role_allows_exactly_what_the_definition_calls():
    (machine,) = f15_resources("sfn_state_machine")
    role_name = machine["role_arn"].rsplit("/", 1)[1]
    (role,) = [r for r in f15_resources("iam_role") if r["name"] == role_name]
    assert not role["managed_policies"]
    granted = set()
    for policy_file in role["inline_policies"].values():
        policy = substitute(json.loads((DESIRED / policy_file).read_text()), MEMBER)
        for st in policy["Statement"]:
            assert st["Effect"] == "Allow" and "Condition" not in st and "NotAction" not in st
            actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
            resources = [st["Resource"]] if isinstance(st["Resource"], str) else st["Resource"]
            granted |= {(a, r) for a in actions for r in resources}
    called = set()
    for name, st in definition()["States"].items():
        if st["Type"] != "Task":
            continue
        assert st["Resource"] == "arn:aws:states:::events:putEvents", name
        for entry in st["Parameters"]["Entries"]:
            assert "EventBusName" in entry, "a literal bus, so that the policy can name it"
            called.add(("events:PutEvents", entry["EventBusName"]))
    assert called == {("events:PutEvents", BUS_ARN)}
    assert granted == called


def test_every_rule_to_the_machine_sends_an_event_it_shapes():
    (machine,) = f15_resources("sfn_state_machine")
    sent = set()
    for rule in f15_resources("eventbridge_rule"):
        if any(t["arn"].endswith(":stateMachine:" + machine["name"]) for t in rule["targets"].values()):
            for source in rule["event_pattern"]["source"]:
                for detail_type in rule["event_pattern"]["detail-type"]:
                    sent.add((source, detail_type))
    samples = {(e["source"], e["detail-type"]) for e in map(event, [
        "guardduty-finding.json", "securityhub-findings-imported.json", "access-analyzer-finding.json"])}
    assert sent == samples
    for source, detail_type in sent:
        evt = event({"aws.guardduty": "guardduty-finding.json", "aws.securityhub": "securityhub-findings-imported.json",
                     "aws.access-analyzer": "access-analyzer-finding.json"}[source])
        assert (evt["source"], evt["detail-type"]) == (source, detail_type)
        assert execute(evt)[0].status == "SUCCEEDED"


# ---------------------------------------------------------------------------------------
# The interpreter refuses what it does not implement, and checks ASL's static rules


def tiny(**states):
    return {"StartAt": next(iter(states)), "States": states}


@pytest.mark.parametrize("state", [
    {"Type": "Wait", "Seconds": 1, "End": True},
    {"Type": "Map", "ItemsPath": "$.x", "End": True},
    {"Type": "Parallel", "Branches": [], "End": True},
    {"Type": "Pass", "End": True, "Catch": []},
    {"Type": "Pass", "End": True, "Parameters": {"x.$": "States.JsonToString($)"}},
    {"Type": "Pass", "End": True, "Parameters": {"x.$": "$..x"}},
    {"Type": "Pass", "End": True, "Parameters": {"x.$": "$$.Execution.Id"}},
    {"Type": "Pass", "End": True, "InputPath": "$.a[*]"},
    {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True},
    {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents.waitForTaskToken", "End": True},
    {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents", "End": True,
     "Retry": [{"ErrorEquals": ["States.ALL"], "JitterStrategy": "FULL"}]},
])
def test_interpreter_refuses_what_it_does_not_implement(state):
    with pytest.raises(asl.Unsupported):
        asl.run(tiny(S=state), {"a": [1]}, asl.EventBridgeRecorder())


def test_interpreter_refuses_an_unknown_comparator():
    d = tiny(C={"Type": "Choice", "Choices": [{"Variable": "$.a", "StringMatches": "x*", "Next": "E"}], "Default": "E"},
             E={"Type": "Succeed"})
    with pytest.raises(asl.Unsupported):
        asl.run(d, {"a": "xy"}, asl.EventBridgeRecorder())


@pytest.mark.parametrize("change", [
    lambda d: d.update(StartAt="Nowhere"),
    lambda d: d["States"]["Console host"].update(Next="Nowhere"),
    lambda d: d["States"]["Source"].update(Default="Nowhere"),
    lambda d: d["States"]["Publish"].pop("End"),
    lambda d: d["States"]["Publish"].update(Next="Context"),
    lambda d: d["States"]["Unknown event"].update(Next="Context"),
    lambda d: d["States"].update(Orphan={"Type": "Succeed"}),
    lambda d: d["States"]["Source"]["Choices"][0].pop("Next"),
    lambda d: d["States"]["Source"]["Choices"][0]["And"][0].update(Next="Publish"),
    lambda d: d["States"]["Context"].update(ResultPath="cm"),
])
def test_validation_rejects_broken_definitions(change):
    d = copy.deepcopy(definition())
    change(d)
    with pytest.raises((asl.InvalidDefinition, asl.Unsupported)):
        asl.validate(d)


def test_paths_select_as_asl_does():
    data = {"a": {"b-c": [{"d": 1}, {"d": 2}]}, "x": None}
    assert asl.Path("$").select(data) is data
    assert asl.Path("$.a['b-c'][1].d").select(data) == 2
    assert asl.Path("$.x").select(data) is None
    with pytest.raises(asl.StatesError) as e:
        asl.Path("$.a.missing").select(data)
    assert e.value.error == "States.Runtime"
    assert asl.put({"a": 1}, asl.reference_path("$.b.c"), 2) == {"a": 1, "b": {"c": 2}}


def test_intrinsics_evaluate_as_documented():
    data = {"arn": "arn:aws:access-analyzer:us-west-2:111122223333:analyzer/MyAnalyzer", "n": "x"}
    assert asl.call_intrinsic(asl.parse_intrinsic(
        "States.Format('{}/{} \\{\\}', $.n, States.ArrayGetItem(States.StringSplit($.arn, '/'), 1))"), data) \
        == "x/MyAnalyzer {}"
    with pytest.raises(asl.StatesError):
        asl.call_intrinsic(asl.parse_intrinsic("States.Format('{} {}', $.n)"), data)
    with pytest.raises(asl.StatesError):
        asl.call_intrinsic(asl.parse_intrinsic("States.ArrayGetItem(States.StringSplit($.arn, '/'), 2)"), data)
