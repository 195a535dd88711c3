"""The spec's SQS queue names and the redrive count ``botqueue setup`` writes.

They live apart from sqs_setup (which needs botocore) and import nothing, so that the command
line can show them as its defaults without loading the SQS client.
"""

from __future__ import annotations

QUEUE_NAME = "bot-operations.fifo"
"""The spec's main queue name."""
DLQ_NAME = "bot-operations-dlq.fifo"
"""The spec's dead-letter queue name."""
DEFAULT_MAX_RECEIVE_COUNT = 25
"""The redrive policy's maxReceiveCount that setup writes."""
