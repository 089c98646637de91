"""checkov (an infrastructure linter, independent of cm-baseline) over deploy/: the Dockerfile,
the Kubernetes manifests, the CloudFormation template, and whatever else of deploy/ it
recognises (it knows no ECS task definition, and reads deploy/iam/*.json as plain JSON).

Every failed check fails the test. A finding is either fixed or justified where it occurs,
with checkov's inline comment `# checkov:skip=CKV_...: reason`; a skip without a reason
fails too, and so does a file checkov could not parse.

checkov lives in a virtualenv of its own (tests/deploy/checkov-requirements.txt says why),
which scripts/test makes; it is found through CM_CHECKOV_VENV, then the default place of
that virtualenv (scripts/lib.sh), then beside this Python, then on PATH.

Run from the repository root: `python -m pytest -q tests/deploy`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# The frameworks that must have found something in deploy/: a file checkov stops
# recognising would otherwise pass unseen.
EXPECTED_FRAMEWORKS = {"dockerfile", "kubernetes", "cloudformation"}


def checkov_command() -> list[str]:
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cm-baseline"
    venv = Path(os.environ.get("CM_CHECKOV_VENV") or cache / "checkov-venv")
    for candidate in (venv / "bin" / "checkov", Path(sys.executable).parent / "checkov"):
        if candidate.exists():
            return [str(candidate)]
    found = shutil.which("checkov")
    if found is None:
        pytest.fail(
            "checkov is not installed: scripts/test installs it, or "
            "python3 -m venv ~/.cache/cm-baseline/checkov-venv && "
            "~/.cache/cm-baseline/checkov-venv/bin/pip install -r tests/deploy/checkov-requirements.txt"
        )
    return [found]


def run_checkov(directory: Path) -> list[dict]:
    """checkov's JSON reports, one per framework that found something."""
    proc = subprocess.run(
        # --skip-download: nothing is fetched from Prisma Cloud (no guidelines, no custom
        # policies); the checks are the ones shipped in the package.
        [*checkov_command(), "--directory", str(directory), "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    # Exit 0: no failed check; 1: some failed. Anything else: checkov did not run through.
    assert proc.returncode in (0, 1), f"checkov exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    out = json.loads(proc.stdout)
    if isinstance(out, dict) and "check_type" not in out:
        # No framework found anything: an empty summary.
        return []
    return out if isinstance(out, list) else [out]


@lru_cache(maxsize=None)
def deploy_reports() -> tuple[dict, ...]:
    return tuple(run_checkov(DEPLOY))


def where(check: dict) -> str:
    first, last = check.get("file_line_range") or ("?", "?")
    return f"deploy{check['file_path']}:{first}-{last} {check['resource']}"


def test_checkov_reads_every_kind_of_deploy_file():
    frameworks = {r["check_type"] for r in deploy_reports()}
    assert EXPECTED_FRAMEWORKS <= frameworks, f"checkov found nothing for {EXPECTED_FRAMEWORKS - frameworks}"


def test_checkov_parses_every_file():
    errors = [f"{r['check_type']}: {e}" for r in deploy_reports() for e in r["results"].get("parsing_errors", [])]
    assert not errors, "checkov could not parse:\n" + "\n".join(errors)


def test_checkov_finds_no_failed_check():
    failed = [
        f"{c['check_id']} {c['check_name']}\n    {where(c)}"
        for r in deploy_reports()
        for c in r["results"]["failed_checks"]
    ]
    assert not failed, (
        "checkov: fix each finding in deploy/, or justify it in place with "
        "`# checkov:skip=CKV_...: reason`:\n" + "\n".join(failed)
    )


def test_every_skip_gives_a_reason():
    bare = []
    for r in deploy_reports():
        for c in r["results"]["skipped_checks"]:
            reason = ((c.get("check_result") or {}).get("suppress_comment") or "").strip()
            # checkov fills in this text when the comment has no reason of its own.
            if not reason or reason == "No comment provided":
                bare.append(f"{c['check_id']} {where(c)}")
    assert not bare, "checkov:skip without a reason:\n" + "\n".join(bare)


def test_checkov_would_catch_a_careless_dockerfile_and_job(tmp_path: Path):
    """The test is not vacuous: a root image without HEALTHCHECK and a bare Job fail."""
    (tmp_path / "Dockerfile").write_text("FROM debian:bookworm\nRUN apt-get update\nCMD [\"sleep\", \"1\"]\n")
    (tmp_path / "job.yaml").write_text(
        "apiVersion: batch/v1\n"
        "kind: Job\n"
        "metadata:\n"
        "  name: bare\n"
        "spec:\n"
        "  template:\n"
        "    spec:\n"
        "      restartPolicy: Never\n"
        "      containers:\n"
        "        - name: bare\n"
        "          image: example/bare:latest\n"
    )
    failed = {c["check_id"] for r in run_checkov(tmp_path) for c in r["results"]["failed_checks"]}
    # HEALTHCHECK, a USER; default namespace, no limits, no seccomp profile.
    assert {"CKV_DOCKER_2", "CKV_DOCKER_3", "CKV_K8S_21", "CKV_K8S_13", "CKV_K8S_31"} <= failed, sorted(failed)
