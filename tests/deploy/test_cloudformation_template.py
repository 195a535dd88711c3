"""deploy/cloudformation.yaml read as data: its queues are those ``botqueue setup`` creates, its
alarms the spec's three, its IAM policies docs/sqs.md's, its ECS service one token's worker;
and cfn-lint finds nothing in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file

from botqueue.config import Settings
from botqueue.transports.sqs_checks import MIN_MAX_RECEIVE_COUNT
from botqueue.transports.sqs_names import DEFAULT_MAX_RECEIVE_COUNT, DLQ_NAME, QUEUE_NAME
from botqueue.transports.sqs_setup import DLQ_ATTRIBUTES, MAIN_ATTRIBUTES
from tests.deploy.cfn import TEMPLATE, as_attribute, doc_policies, listed, load_template

SPEC_WORKER_ACTIONS = [
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
]
"""The spec's "IAM Permissions" (Production Deployment), on both queues."""
ALARMS = {
    "BacklogAlarm": ("Queue", "ApproximateNumberOfMessagesVisible", 1000),
    "OldestMessageAlarm": ("Queue", "ApproximateAgeOfOldestMessage", 300),
    "DeadLetterAlarm": ("DeadLetterQueue", "ApproximateNumberOfMessagesVisible", 0),
}
"""The spec's CloudWatch alarms: queue, metric, and the threshold it is to exceed."""
SERVICE_RESOURCES = {
    "Cluster",
    "LogGroup",
    "ExecutionRole",
    "TaskRole",
    "TaskDefinition",
    "Service",
    "ScalableTarget",
    "BacklogPerTaskScaling",
}
NO_VALUE = {"Ref": "AWS::NoValue"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def default_of(template: dict[str, Any], value: Any) -> Any:
    """A literal as it is, a ``Ref`` to a parameter as that parameter's default."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return template["Parameters"][value["Ref"]]["Default"]
    return value


def test_the_queues_have_the_attributes_botqueue_setup_writes(template: dict[str, Any]) -> None:
    for logical, expected in (("Queue", MAIN_ATTRIBUTES), ("DeadLetterQueue", DLQ_ATTRIBUTES)):
        properties = dict(template["Resources"][logical]["Properties"])
        del properties["QueueName"]
        properties.pop("RedrivePolicy", None)
        assert {key: as_attribute(value) for key, value in properties.items()} == expected


def test_the_redrive_policy_is_the_one_setup_applies(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["Queue"]["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
        "maxReceiveCount": {"Ref": "MaxReceiveCount"},
    }
    assert "RedrivePolicy" not in resources["DeadLetterQueue"]["Properties"]
    count = template["Parameters"]["MaxReceiveCount"]
    assert count["Default"] == DEFAULT_MAX_RECEIVE_COUNT
    # setup refuses less, and the worker warns about less, for the same reason.
    assert count["MinValue"] == MIN_MAX_RECEIVE_COUNT


def test_the_queue_names_default_to_the_specs(template: dict[str, Any]) -> None:
    base = template["Parameters"]["QueueBaseName"]["Default"]
    names = {
        logical: template["Resources"][logical]["Properties"]["QueueName"]["Fn::Sub"]
        for logical in ("Queue", "DeadLetterQueue")
    }
    assert {k: v.replace("${QueueBaseName}", base) for k, v in names.items()} == {
        "Queue": QUEUE_NAME,
        "DeadLetterQueue": DLQ_NAME,
    }


def test_the_specs_three_alarms_notify_the_topic_when_one_is_given(
    template: dict[str, Any],
) -> None:
    alarms = {
        logical: resource["Properties"]
        for logical, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert set(alarms) == set(ALARMS)
    notify = {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], NO_VALUE]}
    for logical, (queue, metric, threshold) in ALARMS.items():
        alarm = alarms[logical]
        assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/SQS", metric)
        assert alarm["Dimensions"] == [
            {"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}
        ]
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
        assert default_of(template, alarm["Threshold"]) == threshold
        assert alarm["AlarmActions"] == notify
        assert alarm["OKActions"] == notify
    assert template["Parameters"]["AlarmTopicArn"]["Default"] == ""
    assert template["Conditions"]["HasAlarmTopic"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]
    }


def policy_statements(template: dict[str, Any], logical: str) -> dict[str, dict[str, Any]]:
    """A managed policy's statements by Sid, their resources as the queues' logical ids."""
    document = template["Resources"][logical]["Properties"]["PolicyDocument"]
    statements = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        resources = listed(statement["Resource"])
        assert all(resource["Fn::GetAtt"][1] == "Arn" for resource in resources)
        statements[statement["Sid"]] = {
            "actions": listed(statement["Action"]),
            "resources": {resource["Fn::GetAtt"][0] for resource in resources},
        }
    return statements


def test_the_iam_policies_are_those_docs_sqs_md_documents(template: dict[str, Any]) -> None:
    documented = doc_policies()
    worker = policy_statements(template, "WorkerPolicy")
    admin = policy_statements(template, "AdminPolicy")
    assert worker == {"BotQueueWorker": documented["BotQueueWorker"]}
    assert admin == {sid: documented[sid] for sid in admin}
    assert set(worker) | set(admin) == set(documented)
    # And the worker's is the spec's, on both queues.
    assert worker["BotQueueWorker"] == {
        "actions": SPEC_WORKER_ACTIONS,
        "resources": {"Queue", "DeadLetterQueue"},
    }


def test_the_service_exists_only_when_asked_for(template: dict[str, Any]) -> None:
    conditional = {
        logical for logical, resource in template["Resources"].items() if "Condition" in resource
    }
    assert conditional == SERVICE_RESOURCES
    assert template["Parameters"]["DeployService"]["Default"] == "false"
    # The cluster is made only when none is named; everything else comes with the service.
    assert template["Resources"]["Cluster"]["Condition"] == "CreateCluster"
    assert {template["Resources"][r]["Condition"] for r in SERVICE_RESOURCES - {"Cluster"}} == {
        "ServiceDeployed"
    }
    assert {"Fn::Equals": [{"Ref": "DeployService"}, "true"]} in template["Conditions"][
        "ServiceDeployed"
    ]["Fn::And"]


def container_of(template: dict[str, Any]) -> dict[str, Any]:
    (container,) = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert isinstance(container, dict)
    return container


def test_the_container_runs_the_worker_with_its_settings(template: dict[str, Any]) -> None:
    container = container_of(template)
    assert [*container["EntryPoint"], *container["Command"]] == ["botqueue", "worker"]
    plain = [entry for entry in container["Environment"] if "Name" in entry]
    env = {entry["Name"]: entry["Value"] for entry in plain}
    assert env["BOT_OPERATIONS_QUEUE_URL"] == {"Ref": "Queue"}
    assert env["BOT_OPERATIONS_DLQ_URL"] == {"Ref": "DeadLetterQueue"}
    # The shared flood budget only when one is given.
    assert [entry for entry in container["Environment"] if "Name" not in entry] == [
        {
            "Fn::If": [
                "HasSharedFloodBudget",
                {"Name": "TELEGRAM_RATE_LIMIT_URL", "Value": {"Ref": "TelegramRateLimitUrl"}},
                NO_VALUE,
            ]
        }
    ]
    # The token from Secrets Manager or SSM, never in the plain environment.
    assert container["Secrets"] == [
        {"Name": "TELEGRAM_BOT_TOKEN", "ValueFrom": {"Ref": "TelegramTokenSecretArn"}}
    ]
    names = {*env, "TELEGRAM_RATE_LIMIT_URL", "TELEGRAM_BOT_TOKEN"}
    unknown = {name for name in names if name.lower() not in Settings.model_fields}
    assert not unknown, f"the worker reads no such settings: {unknown}"
    port = env["BOTQUEUE_METRICS_PORT"]
    assert container["HealthCheck"]["Command"] == [
        "CMD",
        *("botqueue", "health", "--url", f"http://127.0.0.1:{port}/healthz"),
    ]
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
    group = template["Resources"]["LogGroup"]["Properties"]
    assert group["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_container_stops_only_after_the_grace_period(template: dict[str, Any]) -> None:
    container = container_of(template)
    env = {entry["Name"]: entry["Value"] for entry in container["Environment"] if "Name" in entry}
    grace = float(env["BOTQUEUE_GRACE_PERIOD"])
    assert grace == Settings.model_fields["botqueue_grace_period"].default
    assert grace < container["StopTimeout"] <= 120  # Fargate's most
    # Shorter would draw the worker's start-up warning.
    assert int(template["Resources"]["Queue"]["Properties"]["VisibilityTimeout"]) >= grace


def test_the_task_has_the_worker_policy_and_reads_only_its_token(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["TaskRole"]["Properties"]["ManagedPolicyArns"] == [{"Ref": "WorkerPolicy"}]
    assert "Policies" not in resources["TaskRole"]["Properties"]
    (inline,) = resources["ExecutionRole"]["Properties"]["Policies"]
    (statement,) = inline["PolicyDocument"]["Statement"]
    assert statement["Resource"] == {"Ref": "TelegramTokenSecretArn"}


def test_one_task_by_default_and_never_two_without_a_shared_budget(
    template: dict[str, Any],
) -> None:
    parameters = template["Parameters"]
    assert parameters["MaxTasks"]["Default"] == 1
    assert parameters["MinTasks"]["Default"] == 1
    assert parameters["TelegramRateLimitUrl"]["Default"] == ""
    rule = template["Rules"]["OneTaskWithoutASharedFloodBudget"]
    assert {"Fn::Equals": [{"Ref": "TelegramRateLimitUrl"}, ""]} in rule["RuleCondition"]["Fn::And"]
    assert [a["Assert"] for a in rule["Assertions"]] == [{"Fn::Equals": [{"Ref": "MaxTasks"}, "1"]}]
    # A deployment stops the old task before starting the new one, unless the budget is shared.
    deployment = template["Resources"]["Service"]["Properties"]["DeploymentConfiguration"]
    assert deployment["MaximumPercent"] == {"Fn::If": ["HasSharedFloodBudget", 200, 100]}
    assert deployment["MinimumHealthyPercent"] == {"Fn::If": ["HasSharedFloodBudget", 100, 0]}


def test_scaling_tracks_the_backlog_per_running_task(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    target = resources["ScalableTarget"]["Properties"]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (
        {"Ref": "MinTasks"},
        {"Ref": "MaxTasks"},
    )
    configuration = resources["BacklogPerTaskScaling"]["Properties"][
        "TargetTrackingScalingPolicyConfiguration"
    ]
    assert configuration["TargetValue"] == {"Ref": "BacklogPerTask"}
    metrics = {m["Id"]: m for m in configuration["CustomizedMetricSpecification"]["Metrics"]}
    visible = metrics["visible"]["MetricStat"]["Metric"]
    assert (visible["Namespace"], visible["MetricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    )
    assert visible["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["Queue", "QueueName"]}}
    ]
    tasks = metrics["tasks"]["MetricStat"]["Metric"]
    assert (tasks["Namespace"], tasks["MetricName"]) == (
        "ECS/ContainerInsights",
        "RunningTaskCount",
    )
    returned = [m for m in metrics.values() if m["ReturnData"]]
    assert [m["Expression"] for m in returned] == ["visible / tasks"]


def test_the_outputs(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert set(outputs) == {
        "QueueUrl",
        "DlqUrl",
        "QueueArn",
        "DlqArn",
        "WorkerPolicyArn",
        "AdminPolicyArn",
        "ServiceName",
    }
    assert {name for name, output in outputs.items() if "Condition" in output} == {"ServiceName"}
    assert outputs["ServiceName"]["Condition"] == "ServiceDeployed"


def test_cfn_lint_finds_nothing() -> None:
    # No ignores: neither here nor in the template's Metadata.
    assert "cfn-lint" not in TEMPLATE.read_text()
    assert [str(match) for match in lint_file(TEMPLATE)] == []


def test_cfn_lint_counts_warnings(tmp_path: Path) -> None:
    # The test above is only as strict as lint_file's default rules: a warning must show.
    unused = TEMPLATE.read_text().replace(
        "\nParameters:\n", "\nParameters:\n  Unused:\n    Type: String\n", 1
    )
    (tmp_path / "t.yaml").write_text(unused)
    assert {match.rule.id for match in lint_file(tmp_path / "t.yaml")} == {"W2001"}
