"""AWS Step Functions (awsJson1_0, signing name `states`): one correction to moto 5.2.5.

moto answers CreateStateMachine, ListStateMachines, DescribeStateMachine, UpdateStateMachine,
TagResource and ListTagsForResource as AWS does, except:

- CreateStateMachine with the name of an existing state machine: moto returns the existing
  one whatever the request. AWS treats the call as idempotent only when the definition, type,
  loggingConfiguration and tracingConfiguration match (a different roleArn or tags are
  ignored); otherwise it answers 400 StateMachineAlreadyExists. Answered here, from moto's
  stored state machine; matching requests still reach moto.

This module reads moto's Step Functions backend directly (moto 5.2.5 is pinned).
"""

import json

from moto.stepfunctions.models import stepfunctions_backends

from .wire import Response

SIGNING_NAMES = ("states",)


def reset():
    pass


def _differs(sm, body):
    if body.get("definition") != sm.definition:
        return True
    if (body.get("type") or "STANDARD") != sm.type:
        return True
    logging = body.get("loggingConfiguration")
    if logging is not None and (logging.get("level") or "OFF") != (sm.loggingConfiguration or {}).get("level", "OFF"):
        return True
    tracing = body.get("tracingConfiguration")
    if tracing is not None and bool(tracing.get("enabled")) != bool((sm.tracingConfiguration or {}).get("enabled")):
        return True
    return False


def handle(req):
    if (req.header("X-Amz-Target") or "") != "AWSStepFunctions.CreateStateMachine":
        return None
    try:
        body = req.json()
    except ValueError:
        return None
    arn = f"arn:aws:states:{req.region}:{req.account}:stateMachine:{body.get('name')}"
    backend = stepfunctions_backends[req.account][req.region]
    sm = next((x for x in backend.state_machines if x.arn == arn), None)
    if sm is None or not _differs(sm, body):
        return None
    doc = {"__type": "StateMachineAlreadyExists", "message": f"State Machine Already Exists: '{arn}'"}
    return Response(400, [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", "StateMachineAlreadyExists")], json.dumps(doc))
