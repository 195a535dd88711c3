"""The engine: receive loop, processor, in-flight bookkeeping, hooks, group chains, start-up.

One message's path: the loop (loop.py) receives a batch, splits it by group (chain.py), and
each group's chain runs its messages in order through the processor (processor.py), which
decides: settled, retrying in N seconds, or handed back. The keeper and the ack buffer
(inflight.py) extend and delete what is held; hooks (hooks.py) carry logs, metrics and
outcomes; start-up and signals are in startup.py, the failing-queue policy in outage.py.
"""

from .chain import ChainRunner, by_group
from .hooks import ConsumerHooks, HookSet, LoggingHooks, operation_fields
from .inflight import AckBuffer, VisibilityKeeper
from .loop import BotQueueConsumer
from .outage import ReceiveOutage
from .processor import Decision, HandedBack, MessageProcessor, Retrying, Settled
from .setup import ConsumerOptions, configure_process
from .startup import StopSignals, start_service
from .waits import first_of

__all__ = [
    "AckBuffer",
    "BotQueueConsumer",
    "ChainRunner",
    "ConsumerHooks",
    "ConsumerOptions",
    "Decision",
    "HandedBack",
    "HookSet",
    "LoggingHooks",
    "MessageProcessor",
    "ReceiveOutage",
    "Retrying",
    "Settled",
    "StopSignals",
    "VisibilityKeeper",
    "by_group",
    "configure_process",
    "first_of",
    "operation_fields",
    "start_service",
]
