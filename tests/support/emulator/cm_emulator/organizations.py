"""AWS Organizations (signing name `organizations`): the page size of the account listings.

moto 5.2.5 answers ListAccounts and ListAccountsForParent 100 accounts a page when the
request names no MaxResults, and takes any MaxResults. AWS takes MaxResults from 1 to 20
(the model's `MaxResults` shape: min 1, max 20) and answers at most 20 accounts a page, so
that listing an Organization of N accounts is ceil(N / 20) calls, each after the previous
one (each page's NextToken names the next). Here:
- no MaxResults: the request is passed to moto with MaxResults 20;
- MaxResults from 1 to 20: passed to moto as it is;
- MaxResults below 1 or above 20 (or not a whole number): HTTP 400
  `InvalidInputException` with the model's `Reason` (`MIN_VALUE_EXCEEDED`,
  `MAX_VALUE_EXCEEDED`, `INVALID_ENUM`... as Organizations words its input errors), in the
  service's awsJson1_1 error body, and nothing listed.
Every other Organizations request is moto's.
"""

import json

from .wire import Response

SIGNING_NAMES = ("organizations",)
TARGET = "AWSOrganizationsV20161128."
LISTINGS = ("ListAccounts", "ListAccountsForParent")
PAGE = 20  # the model's MaxResults maximum: AWS's largest page


def reset():
    pass


def _invalid(reason, message):
    body = {"__type": "InvalidInputException", "Message": message, "Reason": reason}
    headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", "InvalidInputException")]
    return Response(400, headers, json.dumps(body))


def handle(req):
    target = req.header("X-Amz-Target") or ""
    if not target.startswith(TARGET) or target[len(TARGET):] not in LISTINGS:
        return None
    try:
        params = req.json()
    except ValueError:
        return None  # moto answers a body it cannot read as AWS does
    size = params.get("MaxResults")
    if size is None:
        params["MaxResults"] = PAGE
        req.set_body(json.dumps(params).encode())
        return None
    if isinstance(size, bool) or not isinstance(size, int):
        return _invalid("INVALID_ENUM", "You provided a value for MaxResults that is not a whole number.")
    if size < 1:
        return _invalid("MIN_VALUE_EXCEEDED", f"You provided a value that is too small: MaxResults {size}, at least 1.")
    if size > PAGE:
        return _invalid("MAX_VALUE_EXCEEDED", f"You provided a value that is too large: MaxResults {size}, at most {PAGE}.")
    return None
