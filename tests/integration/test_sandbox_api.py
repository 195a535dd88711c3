"""The sandbox over raw HTTP: Telegram's envelope and status codes, state changes, the control
API, every fault type and flood control."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from botqueue.sandbox import (
    DEFAULT_TOKEN,
    DEFAULT_WORLD,
    SandboxControl,
    SandboxControlError,
    SandboxServer,
)

PREMIUM, VIP, NO_BOT, KICKED = -1001000000001, -1001000000002, -1001000000003, -1001000000004
BOT_ID = 123456789
OTHER_TOKEN = "987654321:BBF-second-sandbox-bot-000000000000"


class Api:
    """Calls the Bot API the way clients do and checks the envelope on every answer."""

    def __init__(self, session: aiohttp.ClientSession, sandbox: SandboxServer) -> None:
        self.session = session
        self.sandbox = sandbox

    async def raw(
        self, method: str, *, token: str | None = None, verb: str = "POST", **params: Any
    ) -> tuple[int, dict[str, Any]]:
        url = f"{self.sandbox.api_base}{token or self.sandbox.token}/{method}"
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        query, form = (fields, None) if verb == "GET" else (None, fields)
        async with self.session.request(verb, url, params=query, data=form) as response:
            body = await response.json()
            assert response.content_type == "application/json"
        assert isinstance(body["ok"], bool)
        if body["ok"]:
            assert response.status == 200
            assert set(body) == {"ok", "result"}
        else:
            assert response.status == body["error_code"]
            assert set(body) <= {"ok", "error_code", "description", "parameters"}
        return response.status, body

    async def ok(self, method: str, **params: Any) -> Any:
        _status, body = await self.raw(method, **params)
        assert body["ok"], body
        return body["result"]

    async def error(self, method: str, **params: Any) -> tuple[int, str]:
        status, body = await self.raw(method, **params)
        assert not body["ok"], body
        return status, body["description"]


@pytest.fixture
async def api(sandbox: SandboxServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, sandbox)


# -- envelope, routing, parameters -------------------------------------------------------------


async def test_get_me_in_the_envelope_by_get_and_post_any_case(api: Api) -> None:
    me = await api.ok("getMe")
    assert me["id"] == BOT_ID and me["is_bot"] is True and me["username"] == "sandbox_bot"
    assert (await api.raw("GETME", verb="GET"))[1]["result"] == me
    assert await api.ok("getme") == me


async def test_default_token_is_shaped_like_a_real_one(sandbox: SandboxServer) -> None:
    bot_id, _, secret = DEFAULT_TOKEN.partition(":")
    assert sandbox.token == DEFAULT_TOKEN and bot_id == str(BOT_ID) and len(secret) == 35
    assert sandbox.api_base == f"{sandbox.url}/bot"


async def test_unknown_token_unknown_method_and_other_paths(
    api: Api, sandbox: SandboxServer
) -> None:
    assert await api.error("getMe", token=OTHER_TOKEN) == (401, "Unauthorized")
    assert await api.error("getUpdatesPlease") == (404, "Not Found")
    async with api.session.get(f"{sandbox.url}/file/bot{sandbox.token}/photos/1.jpg") as r:
        assert r.status == 404
        assert await r.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


@pytest.mark.parametrize("encoding", ["query", "urlencoded", "multipart", "json"])
async def test_parameters_in_every_encoding(
    api: Api, sandbox: SandboxServer, encoding: str
) -> None:
    url = f"{sandbox.api_base}{sandbox.token}/createChatInviteLink"
    params = {"chat_id": str(PREMIUM), "name": "by " + encoding, "member_limit": "3"}
    kwargs: dict[str, Any] = {
        "query": {"params": params},
        "urlencoded": {"data": params},
        "multipart": {"data": aiohttp.FormData(params, default_to_multipart=True)},
        "json": {
            "json": {
                "chat_id": PREMIUM,
                "name": "by json",
                "member_limit": 3,
                "creates_join_request": False,
            }
        },
    }[encoding]
    async with api.session.post(url, **kwargs) as response:
        body = await response.json()
    assert response.status == 200, body
    assert body["result"]["name"] == "by " + encoding and body["result"]["member_limit"] == 3


async def test_missing_parameters(api: Api) -> None:
    assert await api.error("getChat") == (400, "Bad Request: chat_id is empty")
    assert await api.error("getChatMember", chat_id=PREMIUM) == (
        400,
        "Bad Request: invalid user_id specified",
    )
    assert await api.error("banChatMember", chat_id=PREMIUM, user_id=0) == (
        400,
        "Bad Request: invalid user_id specified",
    )
    assert await api.error("sendMessage", chat_id=1001) == (
        400,
        "Bad Request: message text is empty",
    )
    assert await api.ok("logOut") is True and await api.ok("close") is True


# -- chats and members -------------------------------------------------------------------------


async def test_get_chat_for_channels_users_and_unknown_chats(api: Api) -> None:
    chat = await api.ok("getChat", chat_id="@premium_signals")
    assert chat["id"] == PREMIUM and chat["type"] == "channel" and chat["title"]
    assert {"accent_color_id", "max_reaction_count", "accepted_gift_types"} <= set(chat)
    private = await api.ok("getChat", chat_id=1001)
    assert private["type"] == "private" and private["first_name"] == "Ann"
    assert await api.error("getChat", chat_id=-1009999) == (400, "Bad Request: chat not found")
    assert await api.error("getChat", chat_id="@nobody_here") == (
        400,
        "Bad Request: chat not found",
    )
    assert await api.error("getChat", chat_id=1005) == (400, "Bad Request: chat not found")


@pytest.mark.parametrize(
    ("user_id", "status"),
    [
        (1, "creator"),
        (2, "administrator"),
        (1001, "member"),
        (1009, "kicked"),
        (1004, "left"),
        (BOT_ID, "administrator"),
    ],
)
async def test_get_chat_member_statuses(api: Api, user_id: int, status: str) -> None:
    member = await api.ok("getChatMember", chat_id=PREMIUM, user_id=user_id)
    assert member["status"] == status and member["user"]["id"] == user_id
    if status == "administrator":
        rights = [key for key in member if key.startswith("can_")]
        assert len(rights) >= 13 and all(isinstance(member[key], bool) for key in rights)
    if status == "kicked":
        assert member["until_date"] == 0


async def test_bot_rights_are_reported_as_given(api: Api) -> None:
    bot = await api.ok("getChatMember", chat_id=VIP, user_id=BOT_ID)
    assert bot["can_invite_users"] is True and bot["can_restrict_members"] is False
    assert bot["can_pin_messages"] is False and "can_post_messages" not in bot


async def test_restricted_member(api: Api, control: SandboxControl) -> None:
    await control.add_channel(
        {
            "id": -1002000000001,
            "type": "supergroup",
            "title": "Quiet",
            "bot_rights": {"can_restrict_members": True},
            "restricted": [1004],
        }
    )
    member = await api.ok("getChatMember", chat_id=-1002000000001, user_id=1004)
    assert member["status"] == "restricted" and member["is_member"] is True
    assert member["can_send_messages"] is False


async def test_member_errors(api: Api) -> None:
    assert await api.error("getChatMember", chat_id=PREMIUM, user_id=424242) == (
        400,
        "Bad Request: user not found",
    )
    assert await api.error("getChatMember", chat_id=-1009999, user_id=1001) == (
        400,
        "Bad Request: chat not found",
    )
    assert await api.error("getChatMember", chat_id=NO_BOT, user_id=1001) == (
        403,
        "Forbidden: bot is not a member of the channel chat",
    )
    assert await api.error("getChatMember", chat_id=KICKED, user_id=1001) == (
        403,
        "Forbidden: bot was kicked from the channel chat",
    )


async def test_supergroup_wording(api: Api, control: SandboxControl) -> None:
    await control.set_bot_rights(VIP, "kicked")
    assert await api.error("getChat", chat_id=VIP) == (
        403,
        "Forbidden: bot was kicked from the supergroup chat",
    )
    await control.set_bot_rights(VIP, None)
    assert await api.error("getChat", chat_id=VIP) == (
        403,
        "Forbidden: bot is not a member of the supergroup chat",
    )
    await control.set_bot_rights(VIP, {"can_invite_users": True})
    assert (await api.ok("getChat", chat_id=VIP))["type"] == "supergroup"


async def test_get_chat_administrators(api: Api) -> None:
    admins = await api.ok("getChatAdministrators", chat_id=PREMIUM)
    assert [(a["user"]["id"], a["status"]) for a in admins] == [
        (1, "creator"),
        (2, "administrator"),
        (BOT_ID, "administrator"),
    ]
    assert await api.error("getChatAdministrators", chat_id=1001) == (
        400,
        "Bad Request: there are no administrators in the private chat",
    )


# -- invite links and joining ------------------------------------------------------------------


async def test_create_invite_link(api: Api) -> None:
    expires = int(time.time()) + 3600
    link = await api.ok(
        "createChatInviteLink", chat_id=PREMIUM, name="sub-1", expire_date=expires, member_limit=1
    )
    assert link["invite_link"].startswith("https://t.me/+") and len(link["invite_link"]) > 20
    assert link["creator"]["id"] == BOT_ID and link["expire_date"] == expires
    assert (link["is_primary"], link["is_revoked"], link["creates_join_request"]) == (
        False,
        False,
        False,
    )
    other = await api.ok("createChatInviteLink", chat_id=PREMIUM)
    assert other["invite_link"] != link["invite_link"] and "member_limit" not in other


async def test_invite_link_limits(api: Api) -> None:
    long_name = "x" * 40
    assert (await api.ok("createChatInviteLink", chat_id=PREMIUM, name=long_name))["name"] == (
        "x" * 32
    )  # Telegram cuts names to 32 characters
    assert await api.error("createChatInviteLink", chat_id=PREMIUM, expire_date=1000) == (
        400,
        "Bad Request: EXPIRE_DATE_INVALID",
    )
    assert await api.error("createChatInviteLink", chat_id=PREMIUM, member_limit=100000) == (
        400,
        "Bad Request: USAGE_LIMIT_INVALID",
    )
    assert await api.error(
        "createChatInviteLink", chat_id=PREMIUM, member_limit=5, creates_join_request=True
    ) == (
        400,
        "Bad Request: member limit can't be specified for links requiring administrator approval",
    )
    assert await api.error("createChatInviteLink", chat_id=NO_BOT) == (
        403,
        "Forbidden: bot is not a member of the channel chat",
    )


async def test_invite_link_needs_the_right(api: Api, control: SandboxControl) -> None:
    await control.set_bot_rights(PREMIUM, {"can_restrict_members": True})
    assert await api.error("createChatInviteLink", chat_id=PREMIUM) == (
        400,
        "Bad Request: not enough rights to manage chat invite link",
    )
    assert await api.error("revokeChatInviteLink", chat_id=PREMIUM, invite_link="x") == (
        400,
        "Bad Request: not enough rights to manage chat invite link",
    )


async def test_single_use_link(api: Api, control: SandboxControl) -> None:
    link = await api.ok("createChatInviteLink", chat_id=PREMIUM, member_limit=1)
    assert await control.join(1004, link["invite_link"]) == "member"
    with pytest.raises(SandboxControlError, match="member limit reached") as refused:
        await control.join(1008, link["invite_link"])
    assert refused.value.status == 400
    with pytest.raises(SandboxControlError, match="already a member"):
        await control.join(1004, link["invite_link"])
    assert 1004 in (await control.members(PREMIUM))["members"]
    assert (await api.ok("getChatMember", chat_id=PREMIUM, user_id=1004))["status"] == "member"


async def test_expired_revoked_and_banned(api: Api, control: SandboxControl) -> None:
    expiring = await api.ok(
        "createChatInviteLink", chat_id=PREMIUM, expire_date=int(time.time()) + 60
    )
    await control.advance_clock(120)
    with pytest.raises(SandboxControlError, match="expired"):
        await control.join(1004, expiring["invite_link"])
    link = await api.ok("createChatInviteLink", chat_id=PREMIUM)
    with pytest.raises(SandboxControlError, match="banned"):
        await control.join(1009, link["invite_link"])
    revoked = await api.ok("revokeChatInviteLink", chat_id=PREMIUM, invite_link=link["invite_link"])
    assert revoked["is_revoked"] is True and revoked["invite_link"] == link["invite_link"]
    with pytest.raises(SandboxControlError, match="revoked"):
        await control.join(1004, link["invite_link"])
    with pytest.raises(SandboxControlError, match="not found"):
        await control.join(1004, "https://t.me/+nope")
    assert await api.error(
        "revokeChatInviteLink", chat_id=PREMIUM, invite_link="https://t.me/+nope"
    ) == (400, "Bad Request: INVITE_HASH_EXPIRED")
    assert await api.error("revokeChatInviteLink", chat_id=PREMIUM) == (
        400,
        "Bad Request: invite link must be non-empty",
    )


async def test_join_requests(api: Api, control: SandboxControl) -> None:
    link = await api.ok("createChatInviteLink", chat_id=PREMIUM, creates_join_request=True)
    assert link["pending_join_request_count"] == 0
    assert await control.join(1004, link["invite_link"]) == "pending"
    assert await control.join(1008, link["invite_link"]) == "pending"
    assert (await control.members(PREMIUM))["pending"] == [1004, 1008]
    assert await api.ok("approveChatJoinRequest", chat_id=PREMIUM, user_id=1004) is True
    assert await api.ok("declineChatJoinRequest", chat_id=PREMIUM, user_id=1008) is True
    roster = await control.members(PREMIUM)
    assert 1004 in roster["members"] and 1008 not in roster["members"] and not roster["pending"]
    assert await api.error("approveChatJoinRequest", chat_id=PREMIUM, user_id=1004) == (
        400,
        "Bad Request: USER_ALREADY_PARTICIPANT",
    )
    assert await api.error("declineChatJoinRequest", chat_id=PREMIUM, user_id=1008) == (
        400,
        "Bad Request: HIDE_REQUESTER_MISSING",
    )
    await control.set_bot_rights(PREMIUM, {"can_restrict_members": True})
    assert await api.error("approveChatJoinRequest", chat_id=PREMIUM, user_id=1010) == (
        400,
        "Bad Request: not enough rights to manage chat join requests",
    )


# -- ban and unban -----------------------------------------------------------------------------


async def test_ban_then_unban_if_banned(api: Api, control: SandboxControl) -> None:
    assert await api.ok("banChatMember", chat_id=PREMIUM, user_id=1001) is True
    assert (await api.ok("getChatMember", chat_id=PREMIUM, user_id=1001))["status"] == "kicked"
    assert 1001 in (await control.members(PREMIUM))["banned"]
    assert (
        await api.ok("unbanChatMember", chat_id=PREMIUM, user_id=1001, only_if_banned=True) is True
    )
    assert (await api.ok("getChatMember", chat_id=PREMIUM, user_id=1001))["status"] == "left"
    roster = await control.members(PREMIUM)
    assert 1001 not in roster["members"] and 1001 not in roster["banned"]


async def test_unban_variants(api: Api) -> None:
    assert (
        await api.ok("unbanChatMember", chat_id=PREMIUM, user_id=1002, only_if_banned=True) is True
    )
    assert (await api.ok("getChatMember", chat_id=PREMIUM, user_id=1002))["status"] == "member"
    assert await api.ok("unbanChatMember", chat_id=PREMIUM, user_id=1002) is True
    assert (await api.ok("getChatMember", chat_id=PREMIUM, user_id=1002))["status"] == "left"
    assert await api.ok("kickChatMember", chat_id=PREMIUM, user_id=1003) is True  # old name


QUIET = -1002000000001  # a supergroup with a restricted member (Ann) and a restricted leaver


async def quiet(control: SandboxControl, rights: dict[str, bool]) -> None:
    await control.add_channel(
        {
            "id": QUIET,
            "type": "supergroup",
            "title": "Quiet",
            "creator": 1,
            "bot_rights": rights,
            "admins": [2],
            "members": [1002],
            "restricted": [1001],
            "restricted_out": [1003],
            "banned": [1009],
        }
    )


async def status(api: Api, user: int) -> Any:
    return await api.ok("getChatMember", chat_id=QUIET, user_id=user)


async def test_a_plain_unban_leaves_everyone_left(api: Api, control: SandboxControl) -> None:
    # Client.cpp sets the status to Left, TDLib kicks a member first: member, restricted (in or
    # out) and banned all end "left", restrictions lifted, free to join again.
    await quiet(control, {"can_restrict_members": True, "can_invite_users": True})
    assert (await status(api, 1001))["is_member"] is True
    assert (await status(api, 1003))["is_member"] is False
    for user in (1001, 1002, 1003, 1009, 1004):
        assert await api.ok("unbanChatMember", chat_id=QUIET, user_id=user) is True
        assert (await status(api, user))["status"] == "left"
    roster = await control.members(QUIET)
    assert roster["members"] == roster["restricted"] == roster["restricted_out"] == []
    assert roster["banned"] == []


async def test_a_plain_unban_refuses_admins_and_needs_rights_only_for_a_change(
    api: Api, control: SandboxControl
) -> None:
    await quiet(control, {"can_invite_users": True})
    # Already Left: TDLib answers at once, before any rights check.
    assert await api.ok("unbanChatMember", chat_id=QUIET, user_id=1004) is True
    assert await api.error("unbanChatMember", chat_id=QUIET, user_id=1) == (
        400,
        "Bad Request: can't remove chat owner",
    )
    refused = (400, "Bad Request: not enough rights to restrict/unrestrict chat member")
    for user in (2, 1001, 1002, 1003, 1009):
        assert await api.error("unbanChatMember", chat_id=QUIET, user_id=user) == refused
    await quiet(control, {"can_restrict_members": True})
    assert await api.error("unbanChatMember", chat_id=QUIET, user_id=2) == (
        400,
        "Bad Request: user is an administrator of the chat",
    )
    assert (await status(api, 2))["status"] == "administrator"


async def test_a_restricted_leaver_comes_back_restricted(api: Api, control: SandboxControl) -> None:
    await quiet(control, {"can_restrict_members": True, "can_invite_users": True})
    link = (await api.ok("createChatInviteLink", chat_id=QUIET))["invite_link"]
    assert await control.join(1003, link) == "restricted"
    assert (await status(api, 1003))["is_member"] is True


async def test_a_plain_unban_of_a_member_kicks_them_first_as_tdlib_does(
    api: Api, control: SandboxControl
) -> None:
    # TDLib bans the member until now + 60 s, waits a second, then sets them Left.
    await control.set_kick_seconds(0.3)
    unban = asyncio.create_task(api.ok("unbanChatMember", chat_id=PREMIUM, user_id=1002))
    await asyncio.sleep(0.1)
    meanwhile = await api.ok("getChatMember", chat_id=PREMIUM, user_id=1002)
    assert meanwhile["status"] == "kicked" and meanwhile["until_date"] > time.time() + 50
    assert await unban is True
    assert (await api.ok("getChatMember", chat_id=PREMIUM, user_id=1002))["status"] == "left"
    # Someone banned or already out is answered without the wait (here 60 s).
    await control.set_kick_seconds(60)
    for user in (1009, 1004):
        call = api.ok("unbanChatMember", chat_id=PREMIUM, user_id=user)
        assert await asyncio.wait_for(call, 10) is True
    await control.reset()
    assert await api.ok("unbanChatMember", chat_id=PREMIUM, user_id=1001) is True


async def test_ban_refusals(api: Api) -> None:
    assert await api.error("banChatMember", chat_id=PREMIUM, user_id=2) == (
        400,
        "Bad Request: user is an administrator of the chat",
    )
    assert await api.error("banChatMember", chat_id=PREMIUM, user_id=1) == (
        400,
        "Bad Request: can't remove chat owner",
    )
    assert await api.error("unbanChatMember", chat_id=PREMIUM, user_id=1) == (
        400,
        "Bad Request: can't remove chat owner",
    )
    assert await api.error("banChatMember", chat_id=VIP, user_id=1001) == (
        400,
        "Bad Request: not enough rights to restrict/unrestrict chat member",
    )
    assert await api.error("unbanChatMember", chat_id=VIP, user_id=1001) == (
        400,
        "Bad Request: not enough rights to restrict/unrestrict chat member",
    )
    assert await api.error("banChatMember", chat_id=PREMIUM, user_id=424242) == (
        400,
        "Bad Request: user not found",
    )


# -- messages ----------------------------------------------------------------------------------


async def test_send_message_to_a_user_is_recorded(api: Api, control: SandboxControl) -> None:
    markup = {"inline_keyboard": [[{"text": "Join", "url": "https://t.me/+abc"}]]}
    message = await api.ok("sendMessage", chat_id=1001, text="Welcome", reply_markup=markup)
    assert message["chat"] == {
        "id": 1001,
        "type": "private",
        "first_name": "Ann",
        "username": "ann",
    }
    assert message["from"]["id"] == BOT_ID and message["text"] == "Welcome"
    assert message["reply_markup"] == markup and message["message_id"] == 1
    second = await api.ok("sendMessage", chat_id=1001, text="Again")
    assert second["message_id"] == 2
    await api.ok("sendMessage", chat_id=1002, text="Hi Ben")
    sent = await control.messages(1001)
    assert [m["text"] for m in sent] == ["Welcome", "Again"]
    assert sent[0]["reply_markup"] == markup and sent[0]["bot_id"] == BOT_ID
    assert len(await control.messages()) == 3


@pytest.mark.parametrize(
    ("user_id", "description"),
    [
        (1005, "Forbidden: bot can't initiate conversation with a user"),
        (1006, "Forbidden: bot was blocked by the user"),
        (1007, "Forbidden: user is deactivated"),
        (424242, "Bad Request: chat not found"),
    ],
)
async def test_undeliverable_messages(
    api: Api, control: SandboxControl, user_id: int, description: str
) -> None:
    status, text = await api.error("sendMessage", chat_id=user_id, text="hello")
    assert text == description and status == (403 if text.startswith("Forbidden") else 400)
    assert await control.messages() == []


async def test_channel_posts(api: Api, control: SandboxControl) -> None:
    post = await api.ok("sendMessage", chat_id="@premium_signals", text="Signal")
    assert post["sender_chat"]["id"] == PREMIUM and "from" not in post
    await control.set_bot_rights(PREMIUM, {"can_invite_users": True})
    assert await api.error("sendMessage", chat_id=PREMIUM, text="x") == (
        400,
        "Bad Request: need administrator rights in the channel chat",
    )


# -- the control API ---------------------------------------------------------------------------


async def test_request_counts_and_reset(api: Api, control: SandboxControl) -> None:
    await api.ok("getMe")
    await api.ok("GetMe")
    await api.ok("banChatMember", chat_id=PREMIUM, user_id=1001)
    await api.error("noSuchMethod")
    counts = await control.requests()
    assert counts == {
        "methods": {"getMe": 2, "banChatMember": 1, "noSuchMethod": 1},
        "total": 4,
        "rate_limited": 0,
    }
    await control.reset()
    assert await control.requests() == {"methods": {}, "total": 0, "rate_limited": 0}
    assert 1001 in (await control.members(PREMIUM))["members"]


async def test_load_world_add_user_and_validation(api: Api, control: SandboxControl) -> None:
    world = {
        "bots": [{"token": OTHER_TOKEN, "id": 987654321, "username": "second_bot"}],
        "channels": [
            {
                "id": -1003000000001,
                "title": "Tiny",
                "creator": 7,
                "bot_rights": {"can_invite_users": True},
            }
        ],
        "users": [{"id": 7, "first_name": "Seven"}],
    }
    await control.load_world(world)
    assert await api.error("getMe") == (401, "Unauthorized")
    assert (await api.ok("getMe", token=OTHER_TOKEN))["id"] == 987654321
    status, body = await api.raw(
        "getChatMember", token=OTHER_TOKEN, chat_id=-1003000000001, user_id=7
    )
    assert body["result"]["status"] == "creator"
    await control.add_user({"id": 8, "first_name": "Eight", "started_bot": False})
    status, body = await api.raw("sendMessage", token=OTHER_TOKEN, chat_id=8, text="x")
    assert status == 403
    for bad in (
        {"bots": []},
        {"bots": [{"token": "123:short", "id": 123, "username": "b"}]},
        {**world, "channels": [{"id": -5, "title": "t", "members": [99]}]},
    ):
        with pytest.raises(SandboxControlError) as refused:
            await control.load_world(bad)
        assert refused.value.status == 400
    await control.reset()
    assert (await api.ok("getMe"))["id"] == BOT_ID
    assert (await control.world())["bots"][0]["token"] == DEFAULT_TOKEN


async def test_control_refusals(control: SandboxControl) -> None:
    with pytest.raises(SandboxControlError) as missing:
        await control.members(-1009999)
    assert missing.value.status == 404
    with pytest.raises(SandboxControlError, match="rights"):
        await control.set_bot_rights(PREMIUM, "admin")
    with pytest.raises(SandboxControlError, match="can_invite_user"):
        await control.set_bot_rights(PREMIUM, {"can_invite_user": True})
    with pytest.raises(SandboxControlError, match="error_code"):
        await control.inject_fault("getMe", 200)
    with pytest.raises(SandboxControlError, match="unknown users"):
        await control.add_channel({"id": -7, "title": "x", "members": [5555]})


# -- faults ------------------------------------------------------------------------------------


async def test_fault_answers_the_next_calls_then_stops(api: Api, control: SandboxControl) -> None:
    await control.inject_fault("banChatMember", 400, "Bad Request: PARTICIPANT_ID_INVALID", count=2)
    for _ in range(2):
        assert await api.error("banChatMember", chat_id=PREMIUM, user_id=1001) == (
            400,
            "Bad Request: PARTICIPANT_ID_INVALID",
        )
    assert (await control.members(PREMIUM))["banned"] == [1009]  # faulted calls change nothing
    assert await api.ok("banChatMember", chat_id=PREMIUM, user_id=1001) is True


@pytest.mark.parametrize(
    ("code", "description"),
    [
        (403, "Forbidden: bot was kicked from the channel chat"),
        (500, "Internal Server Error"),
        (502, "Bad Gateway"),
        (401, "Unauthorized"),
    ],
)
async def test_fault_codes(api: Api, control: SandboxControl, code: int, description: str) -> None:
    await control.inject_fault(
        "createChatInviteLink", code, None if code in (500, 502, 401) else description
    )
    assert await api.error("createChatInviteLink", chat_id=PREMIUM) == (code, description)


async def test_injected_429_and_migration_carry_parameters(
    api: Api, control: SandboxControl
) -> None:
    await control.inject_fault("sendMessage", 429, retry_after=7)
    status, body = await api.raw("sendMessage", chat_id=1001, text="x")
    assert (status, body["description"], body["parameters"]) == (
        429,
        "Too Many Requests: retry after 7",
        {"retry_after": 7},
    )
    await control.inject_fault(
        "*",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        migrate_to_chat_id=-1009876,
    )
    status, body = await api.raw("getChat", chat_id=PREMIUM)
    assert body["parameters"] == {"migrate_to_chat_id": -1009876}
    assert (await control.requests())["rate_limited"] == 1
    await control.inject_fault("getMe", 500, count=5)
    await control.clear_faults()
    assert (await api.ok("getMe"))["id"] == BOT_ID


async def test_latency(api: Api, control: SandboxControl) -> None:
    await control.set_latency("getChat", 0.3)
    started = time.monotonic()
    await api.ok("getChat", chat_id=PREMIUM)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    await api.ok("getMe")
    assert time.monotonic() - started < 0.25
    await control.set_latency("*", 0.2)
    started = time.monotonic()
    await api.ok("getMe")
    assert time.monotonic() - started >= 0.2
    await control.set_latency("*", 0)
    await control.set_latency("getChat", 0)
    started = time.monotonic()
    await api.ok("getChat", chat_id=PREMIUM)
    assert time.monotonic() - started < 0.25


async def test_hang_until_the_client_gives_up(
    api: Api, control: SandboxControl, sandbox: SandboxServer
) -> None:
    await control.hang("banChatMember", count=1)
    url = f"{sandbox.api_base}{sandbox.token}/banChatMember"
    with pytest.raises(asyncio.TimeoutError):
        async with api.session.post(
            url,
            data={"chat_id": str(PREMIUM), "user_id": "1001"},
            timeout=aiohttp.ClientTimeout(total=0.5),
        ):
            pass
    assert (await control.members(PREMIUM))["banned"] == [1009]  # the hung call did nothing
    assert await api.ok("banChatMember", chat_id=PREMIUM, user_id=1001) is True


async def test_a_hung_call_does_not_block_stopping() -> None:
    async with SandboxServer() as server, SandboxControl(server.url) as control:
        await control.hang("getMe", count=1)
        async with aiohttp.ClientSession() as session:
            call = asyncio.ensure_future(session.get(f"{server.api_base}{server.token}/getMe"))
            await asyncio.sleep(0.1)
            started = time.monotonic()
            await server.aclose()
            assert time.monotonic() - started < 2.5
            try:
                response = await call
                response.release()
            except aiohttp.ClientError:
                pass


# -- flood control -----------------------------------------------------------------------------


async def test_flood_control_is_a_sliding_window_per_token(
    api: Api, control: SandboxControl
) -> None:
    second_bot = {"token": OTHER_TOKEN, "id": 987654321, "username": "second_bot"}
    await control.load_world({**DEFAULT_WORLD, "bots": [*DEFAULT_WORLD["bots"], second_bot]})
    await control.set_flood(5)
    for _ in range(5):
        await api.ok("getMe")
    status, body = await api.raw("getMe")
    assert status == 429
    assert body["description"] == "Too Many Requests: retry after 1"
    assert body["parameters"] == {"retry_after": 1}
    assert (await api.raw("getMe", token=OTHER_TOKEN))[0] == 200  # another token's window
    await asyncio.sleep(1.05)
    assert (await api.ok("getMe"))["id"] == BOT_ID
    counts = await control.requests()
    assert counts["rate_limited"] == 1 and counts["methods"]["getMe"] == 8
    await control.set_flood(None)
    results = await asyncio.gather(*(api.raw("getMe") for _ in range(20)))
    assert {status for status, _ in results} == {200}


async def test_flood_under_concurrent_load(api: Api, control: SandboxControl) -> None:
    await control.set_flood(10)
    results = await asyncio.gather(*(api.raw("getMe") for _ in range(30)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 10 and statuses.count(429) == 20
    assert (await control.requests())["rate_limited"] == 20


# -- migration ---------------------------------------------------------------------------------


async def test_migrate(api: Api, control: SandboxControl) -> None:
    await control.migrate(VIP, -1009000000002)
    status, body = await api.raw("getChatMember", chat_id=VIP, user_id=1001)
    assert (status, body["description"], body["parameters"]) == (
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": -1009000000002},
    )
    member = await api.ok("getChatMember", chat_id=-1009000000002, user_id=1001)
    assert member["status"] == "member"
    await control.migrate("@premium_signals", -1009000000001)
    assert (await api.ok("getChat", chat_id="@premium_signals"))["id"] == -1009000000001


# -- throughput --------------------------------------------------------------------------------


async def test_answers_hundreds_of_requests_per_second(api: Api) -> None:
    calls = 600

    async def worker(n: int) -> None:
        for i in range(n):
            if i % 3 == 0:
                await api.ok("getChatMember", chat_id=PREMIUM, user_id=1001)
            elif i % 3 == 1:
                await api.ok("createChatInviteLink", chat_id=PREMIUM, member_limit=1)
            else:
                await api.ok("sendMessage", chat_id=1002, text="hello")

    started = time.monotonic()
    await asyncio.gather(*(worker(calls // 20) for _ in range(20)))
    rate = calls / (time.monotonic() - started)
    assert rate > 300, f"only {rate:.0f} requests per second"
