"""The sandbox answers what Telegram answers (issue 9): every error text botqueue must handle,
made by a world setting where Telegram gives it on its own and by an injected fault otherwise,
checked verbatim in the envelope over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from botqueue.sandbox import SandboxControl, SandboxServer
from botqueue.sandbox import errors as e

PREMIUM, VIP, NO_BOT, OPEN = -1001000000001, -1001000000002, -1001000000003, -1001000000005
BOT_ID = 123456789
ANN = 1001  # a member of PREMIUM and VIP who started the bot
GROUP = {
    "id": -4001,
    "type": "group",
    "title": "Old Group",
    "creator": 1,
    "bot_rights": {"can_invite_users": True, "can_restrict_members": True},
    "members": [ANN],
}


class Http:
    """Raw HTTP to the Bot API and the control API."""

    def __init__(self, session: aiohttp.ClientSession, sandbox: SandboxServer) -> None:
        self.session = session
        self.sandbox = sandbox

    async def call(self, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
        url = f"{self.sandbox.api_base}{self.sandbox.token}/{method}"
        async with self.session.post(url, json=params) as response:
            return response.status, await response.json()

    async def refused(self, method: str, **params: Any) -> tuple[int, str]:
        """The call's error, after checking the envelope is exactly Telegram's."""
        status, body = await self.call(method, **params)
        assert set(body) == {"ok", "error_code", "description"}, body
        assert body["ok"] is False and body["error_code"] == status
        return status, body["description"]

    async def control(self, verb: str, path: str, body: Any = None) -> tuple[int, Any]:
        url = f"{self.sandbox.url}/_sandbox/{path}"
        async with self.session.request(verb, url, json=body) as response:
            return response.status, await response.json()


@pytest.fixture
async def http(sandbox: SandboxServer) -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(session, sandbox)


# -- a member the bot cannot look up --------------------------------------------------------


async def test_a_member_unknown_to_the_bot_is_not_found(http: Http) -> None:
    status, answer = await http.control("PATCH", f"users/{ANN}", {"known_to_bot": False})
    assert status == 200 and answer["user"]["known_to_bot"] is False
    not_found = (400, "Bad Request: user not found")
    assert await http.refused("getChatMember", chat_id=PREMIUM, user_id=ANN) == not_found
    assert await http.refused("banChatMember", chat_id=PREMIUM, user_id=ANN) == not_found
    assert await http.refused("unbanChatMember", chat_id=PREMIUM, user_id=ANN) == not_found
    assert (
        await http.refused("unbanChatMember", chat_id=PREMIUM, user_id=ANN, only_if_banned=True)
        == not_found
    )
    # Refused calls change nothing: Ann is still a member, and not banned.
    status, roster = await http.control("GET", f"channels/{PREMIUM}/members")
    assert ANN in roster["members"] and ANN not in roster["banned"]
    # Nor can the bot reach her private chat, although she started it.
    chat_not_found = (400, "Bad Request: chat not found")
    assert await http.refused("sendMessage", chat_id=ANN, text="hi") == chat_not_found
    assert await http.refused("getChat", chat_id=ANN) == chat_not_found
    # Once she writes to the bot it knows her again.
    await http.control("PATCH", f"users/{ANN}", {"known_to_bot": True})
    status, body = await http.call("getChatMember", chat_id=PREMIUM, user_id=ANN)
    assert body["result"]["status"] == "member"


async def test_an_unknown_user_added_by_spec_keeps_the_field(control: SandboxControl) -> None:
    await control.add_user({"id": 2001, "first_name": "Kai", "known_to_bot": False})
    world = await control.world()
    (kai,) = [u for u in world["users"] if u["id"] == 2001]
    assert kai["known_to_bot"] is False and kai["started_bot"] is True
    await control.load_world(world)  # a world file round-trips the new fields
    assert (await control.update_user(2001))["known_to_bot"] is False


# -- chats the bot lost ---------------------------------------------------------------------


async def test_an_inaccessible_channel_is_private_once_then_the_bot_was_kicked(
    http: Http, control: SandboxControl
) -> None:
    await control.set_chat_state(PREMIUM, "inaccessible")
    assert await http.refused("getChatMember", chat_id=PREMIUM, user_id=BOT_ID) == (
        400,
        "Bad Request: CHANNEL_PRIVATE",
    )
    # The Bot API server now records the chat as forbidden to the bot.
    assert await http.refused("getChatMember", chat_id=PREMIUM, user_id=BOT_ID) == (
        403,
        "Forbidden: bot was kicked from the channel chat",
    )
    assert (await control.members(PREMIUM))["members"] == [1001, 1002, 1003]


async def test_an_inaccessible_supergroup_refuses_a_message(
    http: Http, control: SandboxControl
) -> None:
    await control.set_chat_state(VIP, "inaccessible")
    assert await http.refused("sendMessage", chat_id=VIP, text="hi") == (
        400,
        "Bad Request: CHANNEL_PRIVATE",
    )
    assert await http.refused("createChatInviteLink", chat_id=VIP) == (
        403,
        "Forbidden: bot was kicked from the supergroup chat",
    )
    assert await control.messages(VIP) == []


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("getChatMember", {"user_id": BOT_ID}),
        ("getChatMember", {"user_id": ANN}),
        ("sendMessage", {"text": "hi"}),
        ("createChatInviteLink", {}),
        ("banChatMember", {"user_id": ANN}),
    ],
)
async def test_a_deleted_group(
    http: Http, control: SandboxControl, method: str, params: dict[str, Any]
) -> None:
    await control.add_channel({**GROUP, "state": "deleted"})
    assert await http.refused(method, chat_id=GROUP["id"], **params) == (
        403,
        "Forbidden: the group chat was deleted",
    )
    assert (await control.members(GROUP["id"]))["members"] == [ANN]


async def test_chat_states_are_validated(http: Http) -> None:
    status, answer = await http.control(
        "POST", "channels", {**GROUP, "type": "channel", "state": "deleted"}
    )
    assert status == 400 and "inaccessible" in answer["error"]
    status, answer = await http.control("POST", "channels", {**GROUP, "state": "inaccessible"})
    assert status == 400 and "deleted" in answer["error"]
    status, answer = await http.control("PATCH", f"channels/{PREMIUM}/state", {"state": "gone"})
    assert status == 400 and "state" in answer["error"]
    status, answer = await http.control("POST", "users", {"id": 7, "first_name": "x", "unknown": 1})
    assert status == 400 and "unknown" in answer["error"]


# -- what Telegram does on its own ----------------------------------------------------------


async def test_a_public_channel_without_the_bot_hides_its_members(http: Http) -> None:
    inaccessible = (400, "Bad Request: member list is inaccessible")
    assert await http.refused("getChatMember", chat_id=OPEN, user_id=1002) == inaccessible
    assert await http.refused("getChatMember", chat_id=OPEN, user_id=BOT_ID) == inaccessible
    assert await http.refused("getChatAdministrators", chat_id="@open_no_bot") == inaccessible
    status, body = await http.call("getChat", chat_id="@open_no_bot")
    assert status == 200 and body["result"]["id"] == OPEN  # a public chat can be read
    not_member = (403, "Forbidden: bot is not a member of the channel chat")
    assert await http.refused("createChatInviteLink", chat_id=OPEN) == not_member
    assert await http.refused("sendMessage", chat_id=OPEN, text="hi") == not_member
    # A private channel without the bot is closed altogether.
    assert await http.refused("getChatMember", chat_id=NO_BOT, user_id=BOT_ID) == not_member


async def test_a_message_to_a_bot(http: Http) -> None:
    assert await http.refused("sendMessage", chat_id=BOT_ID, text="hi") == (
        403,
        "Forbidden: the bot can't send messages to the bot",
    )


async def test_unban_in_a_basic_group_is_refused(http: Http, control: SandboxControl) -> None:
    await control.add_channel(GROUP)
    assert await http.refused("unbanChatMember", chat_id=GROUP["id"], user_id=ANN) == (
        400,
        "Bad Request: method is available for supergroup and channel chats only",
    )


# -- everything else by fault ---------------------------------------------------------------

FAULTS = [
    ("getChatMember", "Bad Request: user not found"),
    ("getChatMember", "Bad Request: member not found"),
    ("getChatMember", "Bad Request: PARTICIPANT_ID_INVALID"),
    ("banChatMember", "Bad Request: PARTICIPANT_ID_INVALID"),
    ("getChatMember", "Bad Request: USER_ID_INVALID"),
    ("getChatMember", "Bad Request: CHANNEL_PRIVATE"),
    ("getChatMember", "Bad Request: group is deactivated"),
    ("getChatMember", "Bad Request: group chat was deactivated"),
    ("getChatMember", "Forbidden: the group chat was deleted"),
    ("getChatMember", "Bad Request: CHAT_ADMIN_REQUIRED"),
    ("getChatMember", "Bad Request: member list is inaccessible"),
    ("sendMessage", "Forbidden: bot can't send messages to bots"),
    ("sendMessage", "Forbidden: bots can't send messages to bots"),
    ("sendMessage", "Bad Request: PEER_ID_INVALID"),
    ("sendMessage", "Bad Request: USER_BANNED_IN_CHANNEL"),
]
PARAMS = {
    "getChatMember": {"chat_id": PREMIUM, "user_id": ANN},
    "banChatMember": {"chat_id": PREMIUM, "user_id": ANN},
    "sendMessage": {"chat_id": ANN, "text": "hi"},
}


@pytest.mark.parametrize(("method", "text"), FAULTS)
async def test_a_fault_answers_telegrams_text_with_its_code(
    http: Http, method: str, text: str
) -> None:
    # No error_code: it follows from the prefix, as Telegram pairs them.
    status, _ = await http.control(
        "POST", "faults", {"method": method, "description": text, "count": 2}
    )
    assert status == 200
    code = 403 if text.startswith("Forbidden") else 400
    for _ in range(2):
        assert await http.refused(method, **PARAMS[method]) == (code, text)
    status, roster = await http.control("GET", f"channels/{PREMIUM}/members")
    assert ANN in roster["members"]  # a faulted call changes nothing
    status, body = await http.call(method, **PARAMS[method])
    assert status == 200 and body["ok"] is True  # the count is used up


async def test_the_client_injects_a_description(http: Http, control: SandboxControl) -> None:
    await control.inject_error("getChatMember", e.MEMBER_NOT_FOUND)
    await control.inject_fault("sendMessage", 403, e.BOT_CANT_SEND_TO_BOTS)
    assert await http.refused("getChatMember", chat_id=PREMIUM, user_id=ANN) == (
        400,
        "Bad Request: member not found",
    )
    assert await http.refused("sendMessage", chat_id=ANN, text="hi") == (
        403,
        "Forbidden: bot can't send messages to bots",
    )


async def test_a_code_that_contradicts_the_prefix_is_refused(http: Http) -> None:
    fault = {"method": "getChatMember", "error_code": 400, "description": e.GROUP_CHAT_DELETED}
    status, answer = await http.control("POST", "faults", fault)
    assert status == 400 and "does not match 'Forbidden'" in answer["error"]
    status, answer = await http.control("POST", "faults", {"method": "getMe", "description": "x"})
    assert status == 400 and "give error_code" in answer["error"]
    status, answer = await http.control("POST", "faults", {"method": "getMe"})
    assert status == 400 and "required" in answer["error"]


def test_each_text_has_its_own_constant() -> None:
    assert e.INVALID_USER_ID_SPECIFIED == "Bad Request: invalid user_id specified"
    assert e.USER_ID_INVALID == "Bad Request: USER_ID_INVALID"
    texts = [value for name, value in vars(e).items() if name.isupper() and isinstance(value, str)]
    assert len(texts) == len(set(texts))
    for _method, text in FAULTS:
        assert text in texts
