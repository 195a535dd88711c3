"""Bot API calls per operation, counted by the sandbox (issue 17): bench/bench_calls.py's probe
run against the test's sandbox: first attempts, and a 502 on the operation's second call and
on its last, each followed by the retry that completes it."""

from __future__ import annotations

import sys
from pathlib import Path

from botqueue.sandbox import SandboxServer

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:  # the bench scripts import each other top-level
    sys.path.append(str(BENCH))
from bench_calls import probe  # noqa: E402 (needs the bench folder on sys.path)


async def test_calls_per_operation(sandbox: SandboxServer) -> None:
    found = {
        case: (got["calls"], got["methods"]) for case, got in (await probe(sandbox.url)).items()
    }
    assert found == {
        "invite": (3, {"getChatMember": 1, "createChatInviteLink": 1, "sendMessage": 1}),
        # The link was never made: the retry makes it again and sends it.
        "invite, 502 on createChatInviteLink": (
            5,
            {"getChatMember": 2, "createChatInviteLink": 2, "sendMessage": 1},
        ),
        # Not delivered: the link is revoked before the retry makes and sends another.
        "invite, 502 on sendMessage": (
            7,
            {
                "getChatMember": 2,
                "createChatInviteLink": 2,
                "sendMessage": 2,
                "revokeChatInviteLink": 1,
            },
        ),
        # Two calls, no ban (three before issue 17: getChatMember, ban, unban).
        "removal": (2, {"getChatMember": 1, "unbanChatMember": 1}),
        # The unban answered 502 without acting: the retry finds a member and unbans again.
        "removal, 502 on unbanChatMember": (4, {"getChatMember": 2, "unbanChatMember": 2}),
        "verify": (1, {"getChatMember": 1}),
        "verify, 502 on getChatMember": (2, {"getChatMember": 2}),
    }
