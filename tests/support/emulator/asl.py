"""A small interpreter of the Amazon States Language, for the tests of the state machines
cm-baseline ships (F15's cm-sharpening-security-alert-machine).

It implements only the subset those definitions use, and refuses everything else loudly
(`Unsupported`), so that a test can never pass on something it silently skipped:

- state types Pass, Task, Choice, Succeed, Fail;
- InputPath, Parameters, Result, ResultSelector, ResultPath, OutputPath, Retry (no Catch);
- Choice rules And, Or, Not, StringEquals, NumericGreaterThanEquals, BooleanEquals,
  IsPresent, IsNumeric;
- paths made of `$`, `.name`, `['name']` and `[index]` (no `$$`, wildcards, filters,
  slices or recursive descent), as ASL reads them: a path that selects nothing is a
  States.Runtime error, except under IsPresent;
- intrinsic functions States.Format, States.StringSplit and States.ArrayGetItem;
- one Task resource, `arn:<partition>:states:::events:putEvents` (request-response), whose
  request goes to a recorder instead of AWS.

`validate(definition)` checks what can be checked without running: known state types and
fields, StartAt and every Next/Default naming a state, Next or End where ASL requires one,
terminal states, every state reachable, and every path and intrinsic parsing.
"""

import json
import re

MAX_TRANSITIONS = 1000


class Unsupported(Exception):
    """The definition uses something this interpreter does not implement."""


class InvalidDefinition(Exception):
    """The definition breaks a rule of the Amazon States Language."""


class StatesError(Exception):
    """A runtime error of the execution, named as Step Functions names it."""

    def __init__(self, error, cause=""):
        super().__init__(f"{error}: {cause}")
        self.error = error
        self.cause = cause


# ---------------------------------------------------------------------------------------
# Paths


class Path:
    """A JSONPath restricted to `$`, `.name`, `['name']`, `["name"]` and `[index]`."""

    def __init__(self, text):
        if not isinstance(text, str) or not text.startswith("$"):
            raise InvalidDefinition(f"not a path: {text!r}")
        if text.startswith("$$"):
            raise Unsupported(f"context object paths are not implemented: {text!r}")
        self.text = text
        self.steps = []
        i = 1
        while i < len(text):
            c = text[i]
            if c == ".":
                if text.startswith("..", i):
                    raise Unsupported(f"recursive descent is not implemented: {text!r}")
                m = re.compile(r"[^.\[\]*?@()'\" ,]+").match(text, i + 1)
                if not m:
                    raise Unsupported(f"path step not implemented at {i} in {text!r}")
                self.steps.append(m.group(0))
                i = m.end()
            elif c == "[":
                m = re.compile(r"\[(?:'([^'\\]*)'|\"([^\"\\]*)\"|(\d+))\]").match(text, i)
                if not m:
                    raise Unsupported(f"path step not implemented at {i} in {text!r}")
                if m.group(3) is not None:
                    self.steps.append(int(m.group(3)))
                else:
                    self.steps.append(m.group(1) if m.group(1) is not None else m.group(2))
                i = m.end()
            else:
                raise Unsupported(f"path step not implemented at {i} in {text!r}")

    def __repr__(self):
        return f"Path({self.text!r})"

    def select(self, data):
        node = data
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(node, list) or step >= len(node):
                    raise StatesError("States.Runtime", f"path {self.text} selects nothing")
                node = node[step]
            else:
                if not isinstance(node, dict) or step not in node:
                    raise StatesError("States.Runtime", f"path {self.text} selects nothing")
                node = node[step]
        return node

    def present(self, data):
        try:
            self.select(data)
            return True
        except StatesError:
            return False


def reference_path(text):
    """A ResultPath: names only, so that it identifies one node that can be written."""
    p = Path(text)
    if any(isinstance(s, int) for s in p.steps):
        raise Unsupported(f"writing through an array index is not implemented: {text!r}")
    return p


def put(data, path, value):
    """ASL ResultPath: `value` at `path` of (a copy of) `data`."""
    if not path.steps:
        return value
    root = json.loads(json.dumps(data))
    if not isinstance(root, dict):
        raise StatesError("States.ResultPathMatchFailure", f"{path.text} into a non-object input")
    node = root
    for step in path.steps[:-1]:
        child = node.setdefault(step, {})
        if not isinstance(child, dict):
            raise StatesError("States.ResultPathMatchFailure", f"{path.text}: {step} is not an object")
        node = child
    node[path.steps[-1]] = value
    return root


# ---------------------------------------------------------------------------------------
# Intrinsic functions

INTRINSICS = {"States.Format", "States.StringSplit", "States.ArrayGetItem"}


class Template:
    """A string literal of an intrinsic; `{}` not escaped marks a States.Format argument."""

    def __init__(self, parts):
        self.parts = parts  # str, or None for an argument slot

    def text(self):
        if None in self.parts:
            raise Unsupported("`{}` in a string literal outside States.Format's template")
        return "".join(self.parts)


class Call:
    def __init__(self, name, args):
        self.name = name
        self.args = args


def parse_intrinsic(text):
    p = _IntrinsicParser(text)
    call = p.call()
    p.skip_space()
    if p.i != len(text):
        raise InvalidDefinition(f"trailing text after intrinsic in {text!r}")
    return call


class _IntrinsicParser:
    def __init__(self, text):
        self.s = text
        self.i = 0

    def skip_space(self):
        while self.i < len(self.s) and self.s[self.i] == " ":
            self.i += 1

    def call(self):
        m = re.compile(r"States\.[A-Za-z]+").match(self.s, self.i)
        if not m:
            raise InvalidDefinition(f"not an intrinsic function at {self.i} in {self.s!r}")
        name = m.group(0)
        if name not in INTRINSICS:
            raise Unsupported(f"intrinsic function {name} is not implemented")
        self.i = m.end()
        if self.s[self.i:self.i + 1] != "(":
            raise InvalidDefinition(f"{name} without arguments in {self.s!r}")
        self.i += 1
        args = []
        self.skip_space()
        if self.s[self.i:self.i + 1] == ")":
            self.i += 1
            return Call(name, args)
        while True:
            self.skip_space()
            args.append(self.arg())
            self.skip_space()
            c = self.s[self.i:self.i + 1]
            self.i += 1
            if c == ")":
                return Call(name, args)
            if c != ",":
                raise InvalidDefinition(f"expected , or ) at {self.i - 1} in {self.s!r}")

    def arg(self):
        c = self.s[self.i:self.i + 1]
        if c == "'":
            return self.literal()
        if c == "$":
            start = self.i
            depth, quote = 0, None
            while self.i < len(self.s):
                ch = self.s[self.i]
                if quote:
                    if ch == quote:
                        quote = None
                elif ch in "'\"":
                    quote = ch
                elif ch == "[":
                    depth += 1
                elif ch == "]":
                    depth -= 1
                elif depth == 0 and ch in ",)":
                    break
                self.i += 1
            return Path(self.s[start:self.i].rstrip())
        if self.s.startswith("States.", self.i):
            return self.call()
        m = re.compile(r"-?\d+(?:\.\d+)?").match(self.s, self.i)
        if m:
            self.i = m.end()
            return json.loads(m.group(0))
        raise Unsupported(f"intrinsic argument not implemented at {self.i} in {self.s!r}")

    def literal(self):
        self.i += 1
        parts, buf = [], []
        while True:
            if self.i >= len(self.s):
                raise InvalidDefinition(f"unterminated string in {self.s!r}")
            ch = self.s[self.i]
            if ch == "\\":
                nxt = self.s[self.i + 1:self.i + 2]
                if nxt not in ("'", "{", "}", "\\"):
                    raise InvalidDefinition(f"bad escape \\{nxt} in {self.s!r}")
                buf.append(nxt)
                self.i += 2
            elif ch == "'":
                self.i += 1
                break
            elif ch == "{":
                if self.s[self.i + 1:self.i + 2] != "}":
                    raise InvalidDefinition(f"unescaped {{ in {self.s!r}")
                parts.append("".join(buf))
                parts.append(None)
                buf = []
                self.i += 2
            elif ch == "}":
                raise InvalidDefinition(f"unescaped }} in {self.s!r}")
            else:
                buf.append(ch)
                self.i += 1
        parts.append("".join(buf))
        return Template(parts)


def evaluate(arg, data):
    if isinstance(arg, Path):
        return arg.select(data)
    if isinstance(arg, Template):
        return arg.text()
    if isinstance(arg, Call):
        return call_intrinsic(arg, data)
    return arg


def call_intrinsic(call, data):
    if call.name == "States.Format":
        if not call.args or not isinstance(call.args[0], Template):
            raise InvalidDefinition("States.Format needs a string literal template first")
        template, values = call.args[0], [evaluate(a, data) for a in call.args[1:]]
        slots = template.parts.count(None)
        if slots != len(values):
            raise StatesError("States.IntrinsicFailure", f"States.Format has {slots} slots and {len(values)} arguments")
        out, values = [], list(values)
        for part in template.parts:
            if part is None:
                v = values.pop(0)
                if isinstance(v, bool) or not isinstance(v, (str, int)):
                    raise Unsupported(f"States.Format of a {type(v).__name__} argument is not implemented")
                out.append(str(v))
            else:
                out.append(part)
        return "".join(out)
    if call.name == "States.StringSplit":
        if len(call.args) != 2:
            raise StatesError("States.IntrinsicFailure", "States.StringSplit takes 2 arguments")
        s, splitters = (evaluate(a, data) for a in call.args)
        if not isinstance(s, str) or not isinstance(splitters, str) or not splitters:
            raise StatesError("States.IntrinsicFailure", "States.StringSplit takes two strings")
        pieces = re.split("[" + re.escape(splitters) + "]", s)
        if "" in pieces:
            raise Unsupported(f"States.StringSplit producing empty pieces is not implemented: {s!r}")
        return pieces
    if call.name == "States.ArrayGetItem":
        if len(call.args) != 2:
            raise StatesError("States.IntrinsicFailure", "States.ArrayGetItem takes 2 arguments")
        array, index = (evaluate(a, data) for a in call.args)
        if not isinstance(array, list) or isinstance(index, bool) or not isinstance(index, int):
            raise StatesError("States.IntrinsicFailure", "States.ArrayGetItem takes an array and an integer")
        if not 0 <= index < len(array):
            raise StatesError("States.IntrinsicFailure", f"index {index} out of an array of {len(array)}")
        return array[index]
    raise Unsupported(f"intrinsic function {call.name} is not implemented")


def compile_dynamic(value):
    """The value of a `name.$` field: an intrinsic call or a path."""
    if not isinstance(value, str):
        raise InvalidDefinition(f"a field ending in .$ must hold a string, not {value!r}")
    if value.startswith("States."):
        return parse_intrinsic(value)
    if value.startswith("$"):
        return Path(value)
    raise InvalidDefinition(f"a field ending in .$ must hold a path or an intrinsic: {value!r}")


def payload(template, data):
    """ASL payload template (Parameters, ResultSelector)."""
    if isinstance(template, list):
        return [payload(x, data) for x in template]
    if not isinstance(template, dict):
        return template
    out = {}
    for key, value in template.items():
        if key.endswith(".$"):
            name = key[:-2]
            result = evaluate(compile_dynamic(value), data)
        else:
            name = key
            result = payload(value, data)
        if name in out:
            raise InvalidDefinition(f"field {name} given twice in a payload template")
        out[name] = result
    return out


def check_payload(template, where):
    if isinstance(template, list):
        for x in template:
            check_payload(x, where)
    elif isinstance(template, dict):
        names = set()
        for key, value in template.items():
            name = key[:-2] if key.endswith(".$") else key
            if name in names:
                raise InvalidDefinition(f"{where}: field {name} given twice")
            names.add(name)
            if key.endswith(".$"):
                compile_dynamic(value)
            else:
                check_payload(value, where)


# ---------------------------------------------------------------------------------------
# Choice rules

COMPARATORS = {"StringEquals", "NumericGreaterThanEquals", "BooleanEquals", "IsPresent", "IsNumeric"}


def check_rule(rule, top, where):
    if not isinstance(rule, dict):
        raise InvalidDefinition(f"{where}: a choice rule must be an object")
    allowed = {"Next", "Comment"} if top else {"Comment"}
    for op in ("And", "Or", "Not"):
        if op in rule:
            extra = set(rule) - allowed - {op}
            if extra:
                raise Unsupported(f"{where}: fields {sorted(extra)} beside {op} are not implemented")
            subs = rule[op] if op != "Not" else [rule[op]]
            if op != "Not" and (not isinstance(subs, list) or not subs):
                raise InvalidDefinition(f"{where}: {op} needs a non-empty list")
            for sub in subs:
                check_rule(sub, False, where)
            break
    else:
        if "Variable" not in rule:
            raise InvalidDefinition(f"{where}: a choice rule needs a Variable")
        Path(rule["Variable"])
        ops = set(rule) - allowed - {"Variable"}
        if len(ops) != 1:
            raise Unsupported(f"{where}: a rule needs exactly one implemented comparator, has {sorted(ops)}")
        (op,) = ops
        if op not in COMPARATORS:
            raise Unsupported(f"{where}: comparator {op} is not implemented")
        value = rule[op]
        kind = {"StringEquals": str, "NumericGreaterThanEquals": (int, float)}.get(op, bool)
        if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
            raise InvalidDefinition(f"{where}: {op} takes a {kind}, not {value!r}")
    if top and "Next" not in rule:
        raise InvalidDefinition(f"{where}: a top-level choice rule needs Next")
    if not top and "Next" in rule:
        raise InvalidDefinition(f"{where}: a nested choice rule cannot have Next")


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def matches(rule, data):
    if "And" in rule:
        return all(matches(r, data) for r in rule["And"])
    if "Or" in rule:
        return any(matches(r, data) for r in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], data)
    var = Path(rule["Variable"])
    if "IsPresent" in rule:
        return var.present(data) == rule["IsPresent"]
    value = var.select(data)  # selecting nothing is a States.Runtime error
    if "IsNumeric" in rule:
        return is_number(value) == rule["IsNumeric"]
    if "StringEquals" in rule:
        return isinstance(value, str) and value == rule["StringEquals"]
    if "NumericGreaterThanEquals" in rule:
        return is_number(value) and value >= rule["NumericGreaterThanEquals"]
    if "BooleanEquals" in rule:
        return isinstance(value, bool) and value == rule["BooleanEquals"]
    raise Unsupported(f"choice rule {rule}")


# ---------------------------------------------------------------------------------------
# Definition

COMMON = {"Type", "Comment"}
FIELDS = {
    "Pass": COMMON | {"Next", "End", "InputPath", "OutputPath", "ResultPath", "Parameters", "Result"},
    "Task": COMMON | {"Next", "End", "InputPath", "OutputPath", "ResultPath", "Parameters", "ResultSelector",
                      "Resource", "Retry"},
    "Choice": COMMON | {"InputPath", "OutputPath", "Choices", "Default"},
    "Succeed": COMMON | {"InputPath", "OutputPath"},
    "Fail": COMMON | {"Error", "Cause"},
}
RETRIER_FIELDS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate"}
PUT_EVENTS = re.compile(r"arn:(aws|aws-cn|aws-us-gov):states:::events:putEvents")


def validate(definition):
    """Raises InvalidDefinition or Unsupported if `definition` cannot run here."""
    if not isinstance(definition, dict):
        raise InvalidDefinition("a definition is an object")
    extra = set(definition) - {"Comment", "StartAt", "States"}
    if extra:
        raise Unsupported(f"top-level fields {sorted(extra)} are not implemented")
    states = definition.get("States")
    if not isinstance(states, dict) or not states:
        raise InvalidDefinition("States must be a non-empty object")
    if definition.get("StartAt") not in states:
        raise InvalidDefinition(f"StartAt {definition.get('StartAt')!r} names no state")
    edges = {}
    for name, st in states.items():
        where = f"state {name!r}"
        if len(name) > 80:
            raise InvalidDefinition(f"{where}: a state name has at most 80 characters")
        kind = st.get("Type") if isinstance(st, dict) else None
        if kind not in FIELDS:
            raise Unsupported(f"{where}: state type {kind!r} is not implemented")
        extra = set(st) - FIELDS[kind]
        if extra:
            raise Unsupported(f"{where}: fields {sorted(extra)} of a {kind} state are not implemented")
        targets = []
        if kind in ("Pass", "Task"):
            if ("Next" in st) == (st.get("End") is True):
                raise InvalidDefinition(f"{where}: needs exactly one of Next and End: true")
            if "End" in st and st["End"] is not True:
                raise InvalidDefinition(f"{where}: End must be true when given")
            if "Next" in st:
                targets.append(st["Next"])
        if kind == "Choice":
            choices = st.get("Choices")
            if not isinstance(choices, list) or not choices:
                raise InvalidDefinition(f"{where}: Choices must be a non-empty list")
            for rule in choices:
                check_rule(rule, True, where)
                targets.append(rule["Next"])
            if "Default" in st:
                targets.append(st["Default"])
        for field in ("InputPath", "OutputPath"):
            if field in st and st[field] is not None:
                Path(st[field])
        if "ResultPath" in st and st["ResultPath"] is not None:
            reference_path(st["ResultPath"])
        for field in ("Parameters", "ResultSelector"):
            if field in st:
                if not isinstance(st[field], dict):
                    raise InvalidDefinition(f"{where}: {field} must be an object")
                check_payload(st[field], where)
        if kind == "Pass" and "Parameters" in st and "Result" in st:
            raise Unsupported(f"{where}: Parameters together with Result is not implemented")
        if kind == "Task":
            if not isinstance(st.get("Resource"), str) or not PUT_EVENTS.fullmatch(st["Resource"]):
                raise Unsupported(f"{where}: Task resource {st.get('Resource')!r} is not implemented")
            for retrier in st.get("Retry", []):
                extra = set(retrier) - RETRIER_FIELDS
                if extra:
                    raise Unsupported(f"{where}: retrier fields {sorted(extra)} are not implemented")
                if not retrier.get("ErrorEquals"):
                    raise InvalidDefinition(f"{where}: a retrier needs ErrorEquals")
        for t in targets:
            if t not in states:
                raise InvalidDefinition(f"{where}: transition to {t!r}, which is no state")
        edges[name] = targets
    seen, todo = set(), [definition["StartAt"]]
    while todo:
        n = todo.pop()
        if n not in seen:
            seen.add(n)
            todo.extend(edges[n])
    unreachable = sorted(set(states) - seen)
    if unreachable:
        raise InvalidDefinition(f"states not reachable from StartAt: {unreachable}")
    terminal = [n for n in seen if states[n]["Type"] in ("Succeed", "Fail") or states[n].get("End") is True]
    if not terminal:
        raise InvalidDefinition("no terminal state")


# ---------------------------------------------------------------------------------------
# Execution


class EventBridgeRecorder:
    """Stands for EventBridge behind `events:putEvents`: records each request, answers as
    PutEvents does. `fail` lists errors to raise on the first calls (then succeeds)."""

    ENTRY_FIELDS = {"Detail", "DetailType", "EventBusName", "Resources", "Source", "Time", "TraceHeader"}

    def __init__(self, fail=()):
        self.requests = []
        self.fail = list(fail)

    def __call__(self, resource, params):
        if set(params) != {"Entries"} or not isinstance(params["Entries"], list) or not 1 <= len(params["Entries"]) <= 10:
            raise StatesError("States.Runtime", f"PutEvents takes Entries (1 to 10), got {params}")
        entries = []
        for e in params["Entries"]:
            extra = set(e) - self.ENTRY_FIELDS
            if extra:
                raise StatesError("States.Runtime", f"PutEvents entry fields {sorted(extra)} do not exist")
            e = dict(e)
            # Step Functions serialises a JSON Detail for EventBridge, which takes a string.
            if not isinstance(e.get("Detail"), str):
                e["Detail"] = json.dumps(e.get("Detail"), separators=(",", ":"))
            entries.append(e)
        self.requests.append({"Resource": resource, "Entries": entries})
        if self.fail:
            raise StatesError(self.fail.pop(0), "injected by the test")
        n = len(self.requests)
        return {"Entries": [{"EventId": f"recorded-{n}-{i}"} for i in range(len(entries))], "FailedEntryCount": 0}


class Execution:
    def __init__(self):
        self.status = None
        self.output = None
        self.error = None
        self.cause = None
        self.visited = []
        self.retries = []  # (state, attempt, seconds waited)


def _retrier_matches(names, error):
    if error in names or "States.ALL" in names:
        return True
    return "States.TaskFailed" in names and error != "States.Timeout"


def run(definition, execution_input, put_events):
    """Runs `definition` on `execution_input`; `put_events(resource, parameters)` answers the
    Task state. Returns an Execution (SUCCEEDED or FAILED)."""
    validate(definition)
    states = definition["States"]
    ex = Execution()
    name, data = definition["StartAt"], execution_input
    try:
        for _ in range(MAX_TRANSITIONS):
            st = states[name]
            ex.visited.append(name)
            kind = st["Type"]
            if kind == "Fail":
                ex.status, ex.error, ex.cause = "FAILED", st.get("Error"), st.get("Cause")
                return ex
            ip = st.get("InputPath", "$")
            effective = {} if ip is None else Path(ip).select(data)
            if kind == "Choice":
                nxt = next((r["Next"] for r in st["Choices"] if matches(r, effective)), st.get("Default"))
                if nxt is None:
                    raise StatesError("States.NoChoiceMatched", f"no choice of {name} matched")
                op = st.get("OutputPath", "$")
                name, data = nxt, ({} if op is None else Path(op).select(effective))
                continue
            if kind == "Succeed":
                ex.status = "SUCCEEDED"
                op = st.get("OutputPath", "$")
                ex.output = {} if op is None else Path(op).select(effective)
                return ex
            if "Parameters" in st:
                effective = payload(st["Parameters"], effective)
            if kind == "Pass":
                result = st["Result"] if "Result" in st else effective
            else:
                result = _task(name, st, effective, put_events, ex)
                if "ResultSelector" in st:
                    result = payload(st["ResultSelector"], result)
            rp = st.get("ResultPath", "$")
            data = data if rp is None else put(data, reference_path(rp), result)
            op = st.get("OutputPath", "$")
            data = {} if op is None else Path(op).select(data)
            if st.get("End"):
                ex.status, ex.output = "SUCCEEDED", data
                return ex
            name = st["Next"]
        raise StatesError("States.Runtime", f"more than {MAX_TRANSITIONS} transitions")
    except StatesError as e:
        ex.status, ex.error, ex.cause = "FAILED", e.error, e.cause
        return ex


def _task(name, st, params, put_events, ex):
    attempts = {}
    while True:
        try:
            return put_events(st["Resource"], params)
        except StatesError as e:
            for i, r in enumerate(st.get("Retry", [])):
                if _retrier_matches(r["ErrorEquals"], e.error):
                    done = attempts.get(i, 0)
                    if done >= r.get("MaxAttempts", 3):
                        raise
                    wait = r.get("IntervalSeconds", 1) * r.get("BackoffRate", 2.0) ** done
                    attempts[i] = done + 1
                    ex.retries.append((name, done + 1, wait))
                    break
            else:
                raise
