"""Parses a Prometheus scrape with the Prometheus project's own Python client (its
OpenMetrics parser: the daemon serves `application/openmetrics-text`) and prints, as JSON,
each metric family's type and the names of its samples. Test support only.

Usage: python promparse.py FILE
A scrape the parser refuses fails with the parser's error.
"""

import json
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families


def main():
    text = open(sys.argv[1], encoding="utf-8").read()
    out = {}
    for family in text_string_to_metric_families(text):
        label_sets = sorted({json.dumps(s.labels, sort_keys=True) for s in family.samples})
        out[family.name] = {"type": family.type, "samples": sorted({s.name for s in family.samples}),
                            "labels": [json.loads(ls) for ls in label_sets]}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
