"""deploy/cloudformation.yaml deployed into LocalStack's CloudFormation, then used: the queues,
redrive policy, alarms (with their SNS actions) and IAM policies are created for real, `botqueue
setup` finds nothing to change, and a worker drains the stack's queue into the stack's DLQ.

LocalStack's community edition has no ECS and no Application Auto Scaling: with
DeployService=true it "deploys" those resources as placeholders (physical id "unknown", a
warning in its log), so the service part is checked only for what is real there (the roles and
the log group) and otherwise by tests/deploy/test_cloudformation_template.py and cfn-lint.
LocalStack does not evaluate the template's Rules either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from botqueue.transports.sqs_names import DEFAULT_MAX_RECEIVE_COUNT
from botqueue.transports.sqs_setup import DLQ_ATTRIBUTES, MAIN_ATTRIBUTES
from tests.deploy.cfn import (  # noqa: F401 (a fixture, used by name)
    aws_client,
    cfn_localstack_fixture,
    deploy,
    listed,
    load_template,
    stack_resources,
)
from tests.integration.sqs_servers import ROOT, SqsServer

# The first test to start LocalStack may first build its virtualenv (about a minute).
pytestmark = pytest.mark.timeout(900)

QUEUE_RESOURCES = {
    "Queue",
    "DeadLetterQueue",
    "BacklogAlarm",
    "OldestMessageAlarm",
    "DeadLetterAlarm",
    "WorkerPolicy",
    "AdminPolicy",
}
ASSUME_BY_EC2 = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ec2.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


@dataclass
class Stack:
    """A deployed stack and what the test set up around it."""

    name: str
    base: str
    outputs: dict[str, str]
    topic_arn: str
    inbox_url: str  # an SQS queue subscribed to the alarm topic
    roles: dict[str, str]  # parameter -> role name


@pytest.fixture(scope="module")
def stack(cfn_localstack: SqsServer) -> Iterator[Stack]:
    """The template deployed with an alarm topic and roles to attach the policies to."""
    suffix = uuid.uuid4().hex[:8]
    sns, sqs = aws_client(cfn_localstack, "sns"), cfn_localstack.boto3_client()
    topic_arn = sns.create_topic(Name=f"alarms-{suffix}")["TopicArn"]
    inbox_url = sqs.create_queue(QueueName=f"alarm-inbox-{suffix}")["QueueUrl"]
    inbox_arn = sqs.get_queue_attributes(QueueUrl=inbox_url, AttributeNames=["QueueArn"])
    sns.subscribe(
        TopicArn=topic_arn,
        Protocol="sqs",
        Endpoint=inbox_arn["Attributes"]["QueueArn"],
        Attributes={"RawMessageDelivery": "true"},
    )
    iam = aws_client(cfn_localstack, "iam")
    roles = {"WorkerRoleName": f"worker-{suffix}", "AdminRoleName": f"admin-{suffix}"}
    for role in roles.values():
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=ASSUME_BY_EC2)
    name, base = f"botqueue-{suffix}", f"bq-{suffix}"
    outputs = deploy(cfn_localstack, name, QueueBaseName=base, AlarmTopicArn=topic_arn, **roles)
    yield Stack(name, base, outputs, topic_arn, inbox_url, roles)


def run_botqueue(
    server: SqsServer, stack: Stack, home: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """A botqueue command on the stack's queues, as the stack's outputs configure it."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update(server.env())
    env.update(
        {
            "HOME": str(home),
            "BOTQUEUE_LOG_LEVEL": "warning",
            "BOT_OPERATIONS_QUEUE_URL": stack.outputs["QueueUrl"],
            "BOT_OPERATIONS_DLQ_URL": stack.outputs["DlqUrl"],
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "botqueue", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_stack_makes_the_queues_as_botqueue_setup_does(
    cfn_localstack: SqsServer, stack: Stack, tmp_path: Path
) -> None:
    resources = stack_resources(cfn_localstack, stack.name)
    assert set(resources) == QUEUE_RESOURCES
    assert all(r["ResourceStatus"] == "CREATE_COMPLETE" for r in resources.values())
    assert "unknown" not in {r["PhysicalResourceId"] for r in resources.values()}  # all real
    assert set(stack.outputs) == {
        "QueueUrl",
        "DlqUrl",
        "QueueArn",
        "DlqArn",
        "WorkerPolicyArn",
        "AdminPolicyArn",
    }
    sqs = cfn_localstack.boto3_client()
    for url, arn, expected in (
        (stack.outputs["QueueUrl"], stack.outputs["QueueArn"], MAIN_ATTRIBUTES),
        (stack.outputs["DlqUrl"], stack.outputs["DlqArn"], DLQ_ATTRIBUTES),
    ):
        found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert {key: found.get(key) for key in expected} == expected
        assert found["QueueArn"] == arn
    main = sqs.get_queue_attributes(QueueUrl=stack.outputs["QueueUrl"], AttributeNames=["All"])
    assert json.loads(main["Attributes"]["RedrivePolicy"]) == {
        "deadLetterTargetArn": stack.outputs["DlqArn"],
        "maxReceiveCount": DEFAULT_MAX_RECEIVE_COUNT,
    }
    # The same queues as `botqueue setup` would make: it finds nothing to create or fix.
    setup = run_botqueue(
        cfn_localstack,
        stack,
        tmp_path,
        *("setup", "--queue-name", f"{stack.base}.fifo", "--dlq-name", f"{stack.base}-dlq.fifo"),
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "queues exist as configured; nothing changed" in setup.stdout
    assert f"BOT_OPERATIONS_QUEUE_URL={stack.outputs['QueueUrl']}" in setup.stdout
    assert f"BOT_OPERATIONS_DLQ_URL={stack.outputs['DlqUrl']}" in setup.stdout


def test_the_stack_makes_the_policies_and_attaches_them(
    cfn_localstack: SqsServer, stack: Stack
) -> None:
    iam = aws_client(cfn_localstack, "iam")
    arns = {"Queue": stack.outputs["QueueArn"], "DeadLetterQueue": stack.outputs["DlqArn"]}
    template = load_template()["Resources"]
    for logical, role in (("WorkerPolicy", "WorkerRoleName"), ("AdminPolicy", "AdminRoleName")):
        arn = stack.outputs[f"{logical}Arn"]
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]
        deployed = {
            s["Sid"]: (listed(s["Action"]), sorted(listed(s["Resource"])))
            for s in document["Document"]["Statement"]
        }
        written = {
            s["Sid"]: (
                listed(s["Action"]),
                sorted(arns[r["Fn::GetAtt"][0]] for r in listed(s["Resource"])),
            )
            for s in template[logical]["Properties"]["PolicyDocument"]["Statement"]
        }
        assert deployed == written
        attached = iam.list_entities_for_policy(PolicyArn=arn)["PolicyRoles"]
        assert [r["RoleName"] for r in attached] == [stack.roles[role]]


def alarm_notifications(server: SqsServer, stack: Stack, alarm: str) -> Iterator[str]:
    """The new states the alarm topic announces for ``alarm``, as they arrive (for 30 s)."""
    sqs = server.boto3_client()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        received = sqs.receive_message(
            QueueUrl=stack.inbox_url, WaitTimeSeconds=1, MaxNumberOfMessages=10
        )
        for message in received.get("Messages", []):
            sqs.delete_message(QueueUrl=stack.inbox_url, ReceiptHandle=message["ReceiptHandle"])
            body = json.loads(message["Body"])
            if body.get("AlarmName") == alarm:
                yield body["NewStateValue"]


def test_the_specs_alarms_notify_the_topic(cfn_localstack: SqsServer, stack: Stack) -> None:
    cloudwatch = aws_client(cfn_localstack, "cloudwatch")
    alarms = {
        alarm["AlarmName"]: alarm
        for alarm in cloudwatch.describe_alarms(AlarmNamePrefix=stack.name)["MetricAlarms"]
    }
    by_metric = {
        (a["Dimensions"][0]["Value"], a["MetricName"]): (a["ComparisonOperator"], a["Threshold"])
        for a in alarms.values()
    }
    assert by_metric == {
        (f"{stack.base}.fifo", "ApproximateNumberOfMessagesVisible"): (
            "GreaterThanThreshold",
            1000,
        ),
        (f"{stack.base}.fifo", "ApproximateAgeOfOldestMessage"): ("GreaterThanThreshold", 300),
        (f"{stack.base}-dlq.fifo", "ApproximateNumberOfMessagesVisible"): (
            "GreaterThanThreshold",
            0,
        ),
    }
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == alarm["OKActions"] == [stack.topic_arn]
    # The DLQ's alarm, forced into ALARM and back: each change reaches the topic.
    (dead_letters,) = [
        n for n, a in alarms.items() if a["Dimensions"][0]["Value"].endswith("-dlq.fifo")
    ]
    for state in ("ALARM", "OK"):
        cloudwatch.set_alarm_state(AlarmName=dead_letters, StateValue=state, StateReason="test")
        assert state in alarm_notifications(cfn_localstack, stack, dead_letters)


def test_a_worker_drains_the_stacks_queue_into_the_stacks_dlq(
    cfn_localstack: SqsServer, stack: Stack, tmp_path: Path
) -> None:
    ids = {}
    for user, subscription in enumerate(("ok-1", "ok-2", "perm-1", "ok-3")):
        enqueued = run_botqueue(
            cfn_localstack,
            stack,
            tmp_path,
            *("enqueue", "invite", "--user-id", str(100 + user), "--channel", "@stack_room"),
            *("--subscription-id", subscription, "--order-id", f"order-{user}"),
        )
        assert enqueued.returncode == 0, enqueued.stderr
        ids[subscription] = enqueued.stdout.strip()
    cfn_localstack.boto3_client().send_message(
        QueueUrl=stack.outputs["QueueUrl"],
        MessageBody='{"operationType": "PROMOTE_USER"}',
        MessageGroupId="raw",
        MessageDeduplicationId="raw-1",
    )
    worker = run_botqueue(
        cfn_localstack,
        stack,
        tmp_path,
        *(
            "worker",
            "--drain",
            "--wait-time",
            "1",
            "--service",
            "tests.obs_services:ScriptedService",
        ),
    )
    assert worker.returncode == 0, worker.stderr
    assert "Traceback" not in worker.stderr
    # The stack's queues drew no start-up warning (FIFO, redrive into this DLQ, 25 receives).
    assert "warning" not in worker.stderr.lower(), worker.stderr

    stats = run_botqueue(cfn_localstack, stack, tmp_path, "stats", "--json")
    assert stats.returncode == 0, stats.stderr
    counts = json.loads(stats.stdout)
    assert (counts["visible"], counts["in_flight"], counts["dead_letters"]) == (0, 0, 2)
    listed_letters = run_botqueue(cfn_localstack, stack, tmp_path, "dlq", "list", "--json")
    assert listed_letters.returncode == 0, listed_letters.stderr
    letters = [json.loads(line) for line in listed_letters.stdout.splitlines()]
    kinds = {letter["failure"]["kind"]: letter for letter in letters}
    assert set(kinds) == {"permanent", "undecodable"}
    permanent = kinds["permanent"]
    assert permanent["failure"]["originalMessageId"] == ids["perm-1"]
    shown = run_botqueue(cfn_localstack, stack, tmp_path, "dlq", "show", permanent["messageId"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["body"]["subscriptionId"] == "perm-1"


def test_with_deploy_service_the_service_part_comes_too(cfn_localstack: SqsServer) -> None:
    suffix = uuid.uuid4().hex[:8]
    token_arn = f"arn:aws:secretsmanager:us-east-1:000000000000:secret:bot-token-{suffix}"
    name = f"botqueue-service-{suffix}"
    outputs = deploy(
        cfn_localstack,
        name,
        QueueBaseName=f"svc-{suffix}",
        DeployService="true",
        ImageUri="example.invalid/botqueue:1",
        TelegramTokenSecretArn=token_arn,
        Subnets="subnet-0123456789abcdef0",
    )
    resources = stack_resources(cfn_localstack, name)
    template = load_template()["Resources"]
    assert set(resources) == set(template)
    assert "ServiceName" in outputs
    # What LocalStack does have is real: the task's roles and the log group.
    iam = aws_client(cfn_localstack, "iam")
    task_role = resources["TaskRole"]["PhysicalResourceId"]
    attached = iam.list_attached_role_policies(RoleName=task_role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [outputs["WorkerPolicyArn"]]
    execution_role = resources["ExecutionRole"]["PhysicalResourceId"]
    (inline,) = iam.list_role_policies(RoleName=execution_role)["PolicyNames"]
    document = iam.get_role_policy(RoleName=execution_role, PolicyName=inline)["PolicyDocument"]
    assert [s["Resource"] for s in document["Statement"]] == [token_arn]
    # (LocalStack's log group leaves RetentionInDays out; the template test checks it is set.)
    logs = aws_client(cfn_localstack, "logs")
    groups = logs.describe_log_groups(logGroupNamePrefix=f"/botqueue/svc-{suffix}")["logGroups"]
    assert [group["logGroupName"] for group in groups] == [f"/botqueue/svc-{suffix}"]
