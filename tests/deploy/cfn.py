"""deploy/cloudformation.yaml for the tests: the template as data, docs/sqs.md's IAM policies,
and a LocalStack that runs CloudFormation, to deploy the template into.

The SQS tests' LocalStack (tests/integration/sqs_servers.py) has SQS alone, and its
virtualenv lacks what LocalStack's CloudFormation, IAM, CloudWatch and SNS need (moto-ext,
aws-sam-translator, jsonpath-ng). This one lives in a virtualenv of its own,
.venv-localstack-cfn, created when missing or stale; the fixture is ``cfn_localstack``.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.integration.sqs_servers import (
    CREDENTIALS,
    LOCALSTACK_PACKAGES,
    REGION,
    ROOT,
    START_TIMEOUT,
    ServerUnavailable,
    SqsServer,
    ensure_localstack_venv,
    free_port,
    localstack_env,
    stop,
    unavailable,
)

TEMPLATE = ROOT / "deploy" / "cloudformation.yaml"
SQS_DOC = ROOT / "docs" / "sqs.md"
CFN_VENV = ROOT / ".venv-localstack-cfn"
CFN_PACKAGES = [
    *LOCALSTACK_PACKAGES,
    # What the "runtime" extra would bring for these services, without its hundred others.
    "moto-ext==5.1.20.post44",
    "aws-sam-translator==1.115.0",
    "jsonpath-ng==1.16.0",
]
SERVICES = "sqs,cloudformation,iam,sts,cloudwatch,sns,logs"
DOC_QUEUES = {"bot-operations.fifo": "Queue", "bot-operations-dlq.fifo": "DeadLetterQueue"}
"""docs/sqs.md's queue ARNs (by their last part) and the template's resources for them."""


def load_template() -> dict[str, Any]:
    """The template as plain data; short-form tags (!Ref, !GetAtt, !Sub) in their long form."""
    from cfnlint.decode import decode

    template, problems = decode(TEMPLATE)
    assert not problems, problems
    assert template is not None
    loaded: dict[str, Any] = json.loads(json.dumps(template))
    return loaded


def as_attribute(value: Any) -> str:
    """A template property as the SQS attribute string it becomes (True -> "true", 20 -> "20")."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def doc_policies() -> dict[str, dict[str, Any]]:
    """docs/sqs.md's IAM policy statements by Sid: {"actions": [...], "resources": {...}}, the
    resources named as the template's logical ids."""
    statements: dict[str, dict[str, Any]] = {}
    for block in re.findall(r"```json\n(.*?)```", SQS_DOC.read_text(), flags=re.DOTALL):
        for statement in json.loads(block).get("Statement", []):
            statements[statement["Sid"]] = {
                "actions": listed(statement["Action"]),
                "resources": {
                    DOC_QUEUES[arn.rsplit(":", 1)[-1]] for arn in listed(statement["Resource"])
                },
            }
    return statements


def listed(value: Any) -> list[Any]:
    """An IAM field that may be one value or a list, as a list."""
    return value if isinstance(value, list) else [value]


def ensure_cfn_venv() -> Path:
    """The CloudFormation LocalStack's python, creating or reinstalling it when missing or
    stale (about a minute; the tests that need it allow for that)."""
    return ensure_localstack_venv(CFN_VENV, CFN_PACKAGES)


def aws_client(server: SqsServer, service: str) -> Any:
    """A boto3 client of ``service`` on ``server``, with the test credentials."""
    return boto3.client(
        service,
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS[0],
        aws_secret_access_key=CREDENTIALS[1],
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


def _wait_until_serving(server: SqsServer) -> None:
    client = aws_client(server, "cloudformation")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerUnavailable(f"LocalStack exited:\n{server.log_tail()}")
        try:
            client.list_stacks()
            server.boto3_client().list_queues()
            return
        except Exception:
            time.sleep(0.5)
    stop(server)
    raise ServerUnavailable(f"LocalStack did not answer in {START_TIMEOUT:.0f} s")


def start_cfn_localstack(folder: Path) -> SqsServer:
    """LocalStack with CloudFormation and what the template holds, on a free port."""
    python = ensure_cfn_venv()
    port = free_port()
    env = localstack_env(folder, port, SERVICES)
    log_path = folder / "localstack-cfn.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(python), "-m", "localstack.runtime.main"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    server = SqsServer("localstack-cfn", f"http://127.0.0.1:{port}", process, log_path)
    _wait_until_serving(server)
    return server


@pytest.fixture(scope="session", name="cfn_localstack")
def cfn_localstack_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqsServer]:
    """LocalStack with CloudFormation for the session (fails under CI, skips elsewhere)."""
    try:
        server = start_cfn_localstack(tmp_path_factory.mktemp("localstack-cfn"))
    except ServerUnavailable as error:
        unavailable(str(error))
    try:
        yield server
    finally:
        stop(server)


def deploy(server: SqsServer, name: str, **parameters: str) -> dict[str, str]:
    """Create stack ``name`` from the template with ``parameters``; its outputs, once complete.

    Fails with the stack's reason and its failed resources' when it does not complete.
    """
    client = aws_client(server, "cloudformation")
    client.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    deadline = time.monotonic() + 120
    while True:
        stack = client.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if stack["StackStatus"] != "CREATE_COMPLETE":
        failed = [
            f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason')}"
            for event in client.describe_stack_events(StackName=name)["StackEvents"]
            if event["ResourceStatus"].endswith("FAILED")
        ]
        pytest.fail(f"{name}: {stack['StackStatus']} {stack.get('StackStatusReason')} {failed}")
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


def stack_resources(server: SqsServer, name: str) -> dict[str, dict[str, Any]]:
    """The stack's resources by logical id."""
    found = aws_client(server, "cloudformation").describe_stack_resources(StackName=name)
    return {resource["LogicalResourceId"]: resource for resource in found["StackResources"]}
