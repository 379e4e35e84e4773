"""A protocol-level fake Discord: the REST API subset and the gateway websocket.

The real discord.py client connects to it exactly as to Discord: `Route.BASE` points at
`api_base` and `GET /gateway/bot` answers with this server's websocket URL. The
gateway speaks v10 JSON, with `compress=zlib-stream` when the client asks for it
(one zlib stream per connection, each message ending in a Z_SYNC_FLUSH).

Everything the bot does is recorded (`messages`, `reactions`, `interactions`,
`typing`, `commands`, `requests`) and tests inject events as given users
(`post_message`, `react`, `unreact`, `slash`, `autocomplete`). `wait_until(pred)`
waits for the bot to have done something without sleeping blindly.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from tests.fakediscord.payloads import (
    MANAGE_CHANNELS,
    MEMBER_PERMISSIONS,
    FakeChannel,
    FakeGuild,
    FakeUser,
    StoredFile,
    attachment_payload,
    message_payload,
    snowflake,
)

log = logging.getLogger("fakediscord")

MAX_FILES_PER_MESSAGE = 10

# Gateway opcodes.
OP_DISPATCH, OP_HEARTBEAT, OP_IDENTIFY, OP_RESUME = 0, 1, 2, 6
OP_HELLO, OP_HEARTBEAT_ACK = 10, 11

# Interaction types and callback types.
APPLICATION_COMMAND, MESSAGE_COMPONENT, AUTOCOMPLETE = 2, 3, 4
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, AUTOCOMPLETE_RESULT = 4, 5, 8

# Application command option types.
OPT_SUB_COMMAND, OPT_SUB_COMMAND_GROUP, OPT_ATTACHMENT = 1, 2, 11

# Message component types.
BUTTON = 2


def _json(data: Any, status: int = 200) -> web.Response:
    # discord.py only parses a body whose Content-Type is exactly application/json,
    # without aiohttp's "; charset=utf-8".
    return web.Response(body=json.dumps(data).encode(), status=status,
                        headers={"Content-Type": "application/json"})


@dataclass
class FakeMessage:
    id: int
    channel_id: int
    author_id: int
    content: str
    files: list[StoredFile]
    payload: dict[str, Any]
    reply_to: int | None = None
    interaction_token: str | None = None
    edits: int = 0
    deleted: bool = False


@dataclass
class FakeInteraction:
    id: int
    token: str
    type: int
    user: FakeUser
    channel_id: int
    name: str
    created: float = field(default_factory=time.monotonic)
    # (callback type, data, seconds after the interaction was sent)
    callbacks: list[tuple[int, dict[str, Any], float]] = field(default_factory=list)
    original_message_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)
    message_id: int | None = None  # the message whose component was clicked


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    compressor: Any  # zlib compress object, or None without compression
    seq: int = 0
    identified: bool = False


class FakeDiscord:
    """One fake Discord with one bot application, guilds, users and channels."""

    def __init__(self, token: str = "fake-token", bot_name: str = "colorbot") -> None:
        self.token = token
        self.application_id = snowflake()
        self.bot_user = FakeUser(id=self.application_id, name=bot_name, bot=True)
        self.users: dict[int, FakeUser] = {self.bot_user.id: self.bot_user}
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.messages: dict[int, FakeMessage] = {}
        self.cdn: dict[str, StoredFile] = {}
        # A hostile API base: attachment URLs on another origin, sizes that lie.
        self.attachment_base: str | None = None
        self.reported_size: int | None = None
        # (message id, user id, emoji) of every live reaction.
        self.reactions: set[tuple[int, int, str]] = set()
        self.interactions: dict[str, FakeInteraction] = {}
        self.typing: list[int] = []
        self.commands: list[dict[str, Any]] = []
        self.requests: list[tuple[str, str]] = []
        self.unhandled: list[tuple[str, str]] = []
        self.identify_count = 0
        # Query strings of gateway connections (v, encoding, compress), in order.
        self.gateway_queries: list[dict[str, str]] = []
        self._connections: list[_Connection] = []
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        # Incoming webhook posts (training news): (webhook id, payload, files), in order;
        # a status >= 400 here makes every webhook post fail with it.
        self.webhook_posts: list[tuple[str, dict[str, Any], list[StoredFile]]] = []
        self.webhook_status = 0

    # ------------------------------------------------------------------ set-up

    def add_user(self, name: str, permissions: int = MEMBER_PERMISSIONS) -> FakeUser:
        user = FakeUser(id=snowflake(), name=name, permissions=permissions)
        self.users[user.id] = user
        for guild in self.guilds.values():
            guild.members[user.id] = user
        return user

    def add_moderator(self, name: str) -> FakeUser:
        return self.add_user(name, permissions=MEMBER_PERMISSIONS | MANAGE_CHANNELS)

    def add_guild(self, name: str, channels: list[str], premium_tier: int = 0) -> FakeGuild:
        guild = FakeGuild(id=snowflake(), name=name, owner_id=snowflake(),
                          premium_tier=premium_tier)
        guild.members = {u.id: u for u in self.users.values()}
        for position, channel_name in enumerate(channels):
            channel = FakeChannel(id=snowflake(), guild_id=guild.id, name=channel_name,
                                  position=position)
            guild.channels[channel.id] = channel
            self.channels[channel.id] = channel
        self.guilds[guild.id] = guild
        return guild

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application(middlewares=[self._middleware], client_max_size=200 * 1024 * 1024)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        sock = site._server.sockets[0]  # type: ignore[union-attr]
        real_port = sock.getsockname()[1]
        self.base_url = f"http://{host}:{real_port}"

    async def close(self) -> None:
        for conn in list(self._connections):
            await conn.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + "/gateway"

    # ------------------------------------------------------------- waiting

    def _touch(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        """Wait until `predicate()` is truthy (re-checked whenever the fake records
        something) and return its value; raise TimeoutError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"fake Discord: condition not met in {timeout} s")
            try:
                await asyncio.wait_for(self._changed.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass

    async def wait_connected(self, timeout: float = 20.0) -> None:
        await self.wait_until(lambda: any(c.identified for c in self._connections), timeout)

    # ------------------------------------------------------------ queries

    def replies_to(self, message_id: int) -> list[FakeMessage]:
        return [m for m in self.messages.values() if m.reply_to == message_id and not m.deleted]

    def messages_in(self, channel_id: int, author_id: int | None = None) -> list[FakeMessage]:
        return [
            m for m in self.messages.values()
            if m.channel_id == channel_id and not m.deleted
            and (author_id is None or m.author_id == author_id)
        ]

    def reactions_on(self, message_id: int, user_id: int | None = None) -> list[str]:
        return sorted(
            e for (m, u, e) in self.reactions
            if m == message_id and (user_id is None or u == user_id)
        )

    # -------------------------------------------------------- injecting events

    async def post_message(
        self,
        channel: FakeChannel,
        author: FakeUser,
        content: str = "",
        files: list[StoredFile] | None = None,
    ) -> FakeMessage:
        """A user posts a message (with attachments served from the fake CDN)."""
        message = self._create_message(channel, author, content, files or [])
        return message

    async def react(self, user: FakeUser, message: FakeMessage | int, emoji: str) -> None:
        message_id = message if isinstance(message, int) else message.id
        await self._add_reaction(user, message_id, emoji)

    async def unreact(self, user: FakeUser, message: FakeMessage | int, emoji: str) -> None:
        message_id = message if isinstance(message, int) else message.id
        await self._remove_reaction(user, message_id, emoji)

    async def slash(
        self,
        user: FakeUser,
        channel: FakeChannel,
        name: str,
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
    ) -> FakeInteraction:
        """A user runs `/name [subcommand] options...`; StoredFile values become
        attachment options with `resolved.attachments`."""
        return await self._interaction(APPLICATION_COMMAND, user, channel, name, options or {},
                                       subcommand, focused=None)

    async def autocomplete(
        self,
        user: FakeUser,
        channel: FakeChannel,
        name: str,
        options: dict[str, Any],
        focused: str,
        timeout: float = 10.0,
    ) -> list[dict[str, Any]]:
        """A user types into option `focused`; returns the choices the bot offered."""
        interaction = await self._interaction(AUTOCOMPLETE, user, channel, name, options, None,
                                              focused=focused)
        await self.wait_until(lambda: interaction.callbacks, timeout)
        kind, data, _ = interaction.callbacks[0]
        assert kind == AUTOCOMPLETE_RESULT, kind
        return data["choices"]

    def buttons(self, message: FakeMessage | int) -> dict[str, dict[str, Any]]:
        """The buttons under a message the bot sent, by custom_id."""
        message = self.messages[message if isinstance(message, int) else message.id]
        return {
            c["custom_id"]: c
            for row in message.payload.get("components", [])
            for c in row.get("components", [])
            if c.get("type") == BUTTON and c.get("custom_id")
        }

    async def click(self, user: FakeUser, message: FakeMessage | int,
                    custom_id: str) -> FakeInteraction:
        """`user` clicks the button `custom_id` under `message` (one the bot sent
        with that button; Discord only delivers clicks on buttons it shows)."""
        message = self.messages[message if isinstance(message, int) else message.id]
        if custom_id not in self.buttons(message):
            raise KeyError(f"message {message.id} has no button {custom_id!r} "
                           f"(has {sorted(self.buttons(message))})")
        channel = self.channels[message.channel_id]
        guild = self.guilds[channel.guild_id]
        interaction = FakeInteraction(
            id=snowflake(), token=f"itoken-{snowflake()}", type=MESSAGE_COMPONENT, user=user,
            channel_id=channel.id, name="", message_id=message.id,
        )
        self.interactions[interaction.token] = interaction
        member = user.member()
        member["permissions"] = str(user.permissions)
        await self.dispatch("INTERACTION_CREATE", {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": MESSAGE_COMPONENT,
            "data": {"custom_id": custom_id, "component_type": BUTTON},
            "message": self._message_with_reactions(message),
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": channel.payload(),
            "member": member,
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(guild.everyone_permissions),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": guild.filesize_limit,
        })
        return interaction

    # ------------------------------------------------------------ internals

    def _cdn_url(self, file: StoredFile, channel_id: int) -> tuple[int, str]:
        attachment_id = snowflake()
        path = f"/attachments/{channel_id}/{attachment_id}/{file.filename}"
        self.cdn[path] = file
        return attachment_id, f"{self.attachment_base or self.base_url}/cdn{path}"

    def _create_message(
        self,
        channel: FakeChannel,
        author: FakeUser,
        content: str,
        files: list[StoredFile],
        *,
        reply_to: int | None = None,
        embeds: list[dict[str, Any]] | None = None,
        interaction: FakeInteraction | None = None,
        flags: int = 0,
        components: list[dict[str, Any]] | None = None,
    ) -> FakeMessage:
        attachments = []
        for file in files:
            attachment_id, url = self._cdn_url(file, channel.id)
            attachments.append(attachment_payload(attachment_id, file, url))
            if self.reported_size is not None:
                attachments[-1]["size"] = self.reported_size
        message_id = snowflake()
        reference = None
        if reply_to is not None:
            reference = {"message_id": str(reply_to), "channel_id": str(channel.id),
                         "guild_id": str(channel.guild_id)}
        payload = message_payload(
            message_id=message_id,
            channel=channel,
            author=author,
            content=content,
            attachments=attachments,
            embeds=embeds,
            reference=reference,
            webhook_id=self.application_id if interaction else None,
            interaction=(
                {"id": str(interaction.id), "type": interaction.type,
                 "user": interaction.user.user(), "name": interaction.name}
                if interaction else None
            ),
            flags=flags,
        )
        payload["components"] = list(components or [])
        message = FakeMessage(
            id=message_id, channel_id=channel.id, author_id=author.id, content=content,
            files=files, payload=payload, reply_to=reply_to,
            interaction_token=interaction.token if interaction else None,
        )
        self.messages[message_id] = message
        self._touch()
        self._dispatch_soon("MESSAGE_CREATE", payload)
        return message

    def _message_with_reactions(self, message: FakeMessage) -> dict[str, Any]:
        counts: dict[str, list[int]] = {}
        for m, u, e in self.reactions:
            if m == message.id:
                counts.setdefault(e, []).append(u)
        data = dict(message.payload)
        data["reactions"] = [
            {"emoji": {"id": None, "name": e}, "count": len(users),
             "me": self.bot_user.id in users, "burst_count": 0, "me_burst": False,
             "count_details": {"normal": len(users), "burst": 0}, "burst_colors": []}
            for e, users in sorted(counts.items())
        ]
        return data

    async def _add_reaction(self, user: FakeUser, message_id: int, emoji: str) -> None:
        message = self.messages[message_id]
        key = (message_id, user.id, emoji)
        if key in self.reactions:
            return
        self.reactions.add(key)
        self._touch()
        channel = self.channels[message.channel_id]
        await self.dispatch("MESSAGE_REACTION_ADD", {
            "user_id": str(user.id),
            "channel_id": str(channel.id),
            "message_id": str(message_id),
            "guild_id": str(channel.guild_id),
            "member": user.member(),
            "emoji": {"id": None, "name": emoji},
            "message_author_id": str(message.author_id),
            "burst": False,
            "burst_colors": [],
            "type": 0,
        })

    async def _remove_reaction(self, user: FakeUser, message_id: int, emoji: str) -> None:
        key = (message_id, user.id, emoji)
        if key not in self.reactions:
            return
        self.reactions.discard(key)
        self._touch()
        message = self.messages[message_id]
        channel = self.channels[message.channel_id]
        await self.dispatch("MESSAGE_REACTION_REMOVE", {
            "user_id": str(user.id),
            "channel_id": str(channel.id),
            "message_id": str(message_id),
            "guild_id": str(channel.guild_id),
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        })

    def command(self, name: str) -> dict[str, Any]:
        for command in self.commands:
            if command["name"] == name:
                return command
        raise KeyError(f"the bot did not register /{name}; it has "
                       f"{[c['name'] for c in self.commands]}")

    async def _interaction(
        self,
        kind: int,
        user: FakeUser,
        channel: FakeChannel,
        name: str,
        options: dict[str, Any],
        subcommand: str | None,
        focused: str | None,
    ) -> FakeInteraction:
        command = self.command(name)
        declared = command.get("options", [])
        if subcommand is not None:
            sub = next(o for o in declared if o["name"] == subcommand)
            declared = sub.get("options", [])
        types = {o["name"]: o["type"] for o in declared}
        resolved: dict[str, Any] = {}
        option_list: list[dict[str, Any]] = []
        for key, value in options.items():
            if key not in types:
                raise KeyError(f"/{name} has no option {key!r} (has {sorted(types)})")
            entry: dict[str, Any] = {"name": key, "type": types[key]}
            if isinstance(value, StoredFile):
                attachment_id, url = self._cdn_url(value, channel.id)
                resolved.setdefault("attachments", {})[str(attachment_id)] = attachment_payload(
                    attachment_id, value, url)
                entry["value"] = str(attachment_id)
            else:
                entry["value"] = value
            if key == focused:
                entry["focused"] = True
            option_list.append(entry)
        if subcommand is not None:
            option_list = [{"name": subcommand, "type": OPT_SUB_COMMAND, "options": option_list}]
        interaction = FakeInteraction(
            id=snowflake(), token=f"itoken-{snowflake()}", type=kind, user=user,
            channel_id=channel.id, name=name,
        )
        self.interactions[interaction.token] = interaction
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1,
                                "options": option_list}
        if resolved:
            data["resolved"] = resolved
        guild = self.guilds[channel.guild_id]
        member = user.member()
        member["permissions"] = str(user.permissions)
        await self.dispatch("INTERACTION_CREATE", {
            "id": str(interaction.id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "guild_id": str(guild.id),
            "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
            "channel_id": str(channel.id),
            "channel": channel.payload(),
            "member": member,
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(guild.everyone_permissions),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild.id)},
            "context": 0,
            "attachment_size_limit": guild.filesize_limit,
        })
        return interaction

    # ------------------------------------------------------------- gateway

    def _dispatch_soon(self, event: str, data: dict[str, Any]) -> None:
        asyncio.get_running_loop().create_task(self.dispatch(event, data))

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH event to every identified gateway connection."""
        for conn in list(self._connections):
            if conn.identified and not conn.ws.closed:
                conn.seq += 1
                await self._send(conn, {"op": OP_DISPATCH, "t": event, "s": conn.seq, "d": data})

    async def _send(self, conn: _Connection, payload: dict[str, Any]) -> None:
        text = json.dumps(payload)
        try:
            if conn.compressor is None:
                await conn.ws.send_str(text)
            else:
                body = conn.compressor.compress(text.encode()) + conn.compressor.flush(
                    zlib.Z_SYNC_FLUSH)
                await conn.ws.send_bytes(body)
        except ConnectionError:
            pass

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self.gateway_queries.append(dict(request.query))
        compress = request.query.get("compress")
        if compress not in (None, "zlib-stream"):
            await ws.close(code=4000, message=b"fake Discord speaks zlib-stream only")
            return ws
        conn = _Connection(ws=ws, compressor=zlib.compressobj() if compress else None)
        self._connections.append(conn)
        await self._send(conn, {"op": OP_HELLO, "d": {"heartbeat_interval": 41250}})
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                payload = json.loads(msg.data)
                op = payload.get("op")
                if op == OP_HEARTBEAT:
                    # A little network latency: an instant ACK can overtake discord.py's
                    # own bookkeeping of when it sent the heartbeat ("can't keep up").
                    await asyncio.sleep(0.05)
                    await self._send(conn, {"op": OP_HEARTBEAT_ACK})
                elif op == OP_IDENTIFY:
                    if payload["d"].get("token") != self.token:
                        await ws.close(code=4004, message=b"Authentication failed.")
                        break
                    await self._identify(conn, payload["d"])
                elif op == OP_RESUME:
                    # A fresh fake has no session to resume: ask for a new IDENTIFY.
                    await self._send(conn, {"op": 9, "d": False})
        finally:
            self._connections.remove(conn)
            self._touch()
        return ws

    async def _identify(self, conn: _Connection, identify: dict[str, Any]) -> None:
        self.identify_count += 1
        shard = identify.get("shard", [0, 1])
        conn.identified = True
        conn.seq += 1
        await self._send(conn, {"op": OP_DISPATCH, "t": "READY", "s": conn.seq, "d": {
            "v": 10,
            "user": self.bot_user.user() | {"verified": True, "mfa_enabled": False, "flags": 0},
            "guilds": [{"id": str(g), "unavailable": True} for g in self.guilds],
            "session_id": f"session-{snowflake()}",
            "resume_gateway_url": self.gateway_url,
            "shard": shard,
            "application": {"id": str(self.application_id), "flags": 0},
            "private_channels": [],
        }})
        for guild in self.guilds.values():
            conn.seq += 1
            await self._send(conn, {"op": OP_DISPATCH, "t": "GUILD_CREATE", "s": conn.seq,
                                    "d": guild.payload()})
        self._touch()

    # ---------------------------------------------------------------- REST

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        path = request.path
        self.requests.append((request.method, path))
        open_paths = ("/cdn/", "/gateway", "/api/v10/interactions/", "/api/v10/webhooks/",
                      "/api/webhooks/")
        if not path.startswith(open_paths):
            if request.headers.get("Authorization") != f"Bot {self.token}":
                return _json({"message": "401: Unauthorized", "code": 0}, status=401)
        try:
            return await handler(request)
        except web.HTTPNotFound:
            self.unhandled.append((request.method, path))
            return _json({"message": "Unknown route", "code": 0}, status=404)

    def _add_routes(self, app: web.Application) -> None:
        api = "/api/v10"
        r = app.router
        r.add_get("/gateway", self._gateway)
        r.add_get("/cdn/{path:.*}", self._cdn)
        r.add_get(api + "/gateway/bot", self._gateway_bot)
        r.add_get(api + "/gateway", self._gateway_bot)
        r.add_get(api + "/users/@me", self._users_me)
        r.add_get(api + "/applications/@me", self._application)
        r.add_get(api + "/oauth2/applications/@me", self._application)
        r.add_put(api + "/applications/{app}/commands", self._put_commands)
        r.add_get(api + "/applications/{app}/commands", self._get_commands)
        r.add_put(api + "/applications/{app}/guilds/{guild}/commands", self._put_commands)
        r.add_get(api + "/channels/{channel}", self._get_channel)
        r.add_post(api + "/channels/{channel}/messages", self._post_message)
        r.add_get(api + "/channels/{channel}/messages/{message}", self._get_message)
        r.add_patch(api + "/channels/{channel}/messages/{message}", self._patch_message)
        r.add_delete(api + "/channels/{channel}/messages/{message}", self._delete_message)
        r.add_put(api + "/channels/{channel}/messages/{message}/reactions/{emoji}/@me",
                  self._put_reaction)
        r.add_delete(api + "/channels/{channel}/messages/{message}/reactions/{emoji}/{user}",
                     self._delete_reaction)
        r.add_post(api + "/channels/{channel}/typing", self._typing)
        r.add_get(api + "/guilds/{guild}", self._get_guild)
        r.add_get(api + "/guilds/{guild}/channels", self._get_guild_channels)
        r.add_get(api + "/guilds/{guild}/members/{user}", self._get_member)
        r.add_post(api + "/interactions/{id}/{token}/callback", self._callback)
        r.add_post(api + "/webhooks/{app}/{token}", self._followup)
        r.add_get(api + "/webhooks/{app}/{token}/messages/{message}", self._get_webhook_message)
        r.add_patch(api + "/webhooks/{app}/{token}/messages/{message}",
                    self._patch_webhook_message)
        # The webhook URL Discord shows a user: /api/webhooks/ID/TOKEN (no version).
        r.add_post("/api/webhooks/{id}/{token}", self._execute_webhook)

    @staticmethod
    def _error(status: int, code: int, message: str) -> web.Response:
        return _json({"message": message, "code": code}, status=status)

    async def _read_body(self, request: web.Request) -> tuple[dict[str, Any], list[StoredFile]]:
        """JSON body, or multipart `payload_json` + `files[n]` as discord.py sends them."""
        if request.content_type.startswith("multipart/"):
            payload: dict[str, Any] = {}
            files: list[StoredFile] = []
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.name and part.name.startswith("files["):
                    data = bytes(await part.read())
                    files.append(StoredFile(part.filename or "file", data,
                                            part.headers.get("Content-Type",
                                                             "application/octet-stream")))
            return payload, files
        if request.can_read_body:
            return await request.json(), []
        return {}, []

    def _check_upload(self, channel: FakeChannel, files: list[StoredFile]) -> web.Response | None:
        if len(files) > MAX_FILES_PER_MESSAGE:
            return self._error(400, 50035, "Invalid Form Body: at most 10 files")
        limit = self.guilds[channel.guild_id].filesize_limit
        if sum(len(f.data) for f in files) > limit:
            return self._error(413, 40005, "Request entity too large")
        return None

    async def _cdn(self, request: web.Request) -> web.StreamResponse:
        file = self.cdn.get("/" + request.match_info["path"])
        if file is None:
            raise web.HTTPNotFound()
        return web.Response(body=file.data, content_type=file.content_type.split(";")[0])

    async def _gateway_bot(self, request: web.Request) -> web.Response:
        return _json({
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0,
                                    "max_concurrency": 1},
        })

    async def _users_me(self, request: web.Request) -> web.Response:
        return _json(self.bot_user.user())

    async def _application(self, request: web.Request) -> web.Response:
        return _json({
            "id": str(self.application_id),
            "name": self.bot_user.name,
            "icon": None,
            "description": "",
            "rpc_origins": [],
            "bot_public": True,
            "bot_require_code_grant": False,
            "bot": self.bot_user.user(),
            "owner": self.bot_user.user(),
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "summary": "",
        })

    async def _put_commands(self, request: web.Request) -> web.Response:
        body = await request.json()
        known = {c["name"]: c["id"] for c in self.commands}
        self.commands = [
            cmd | {"id": known.get(cmd["name"], str(snowflake())),
                   "application_id": str(self.application_id), "version": str(snowflake()),
                   "type": cmd.get("type", 1)}
            for cmd in body
        ]
        self._touch()
        return _json(self.commands)

    async def _get_commands(self, request: web.Request) -> web.Response:
        return _json(self.commands)

    def _channel(self, request: web.Request) -> FakeChannel:
        channel = self.channels.get(int(request.match_info["channel"]))
        if channel is None:
            raise web.HTTPNotFound()
        return channel

    def _message(self, request: web.Request) -> FakeMessage:
        message = self.messages.get(int(request.match_info["message"]))
        if message is None or message.deleted:
            raise web.HTTPNotFound()
        return message

    async def _get_channel(self, request: web.Request) -> web.Response:
        return _json(self._channel(request).payload())

    async def _post_message(self, request: web.Request) -> web.Response:
        channel = self._channel(request)
        body, files = await self._read_body(request)
        if (error := self._check_upload(channel, files)) is not None:
            return error
        reference = body.get("message_reference") or {}
        reply_to = int(reference["message_id"]) if reference.get("message_id") else None
        if reply_to is not None and reply_to not in self.messages:
            return self._error(400, 50035, "Invalid Form Body: unknown message_reference")
        message = self._create_message(channel, self.bot_user, body.get("content") or "", files,
                                       reply_to=reply_to, embeds=body.get("embeds"),
                                       components=body.get("components"))
        return _json(message.payload)

    async def _get_message(self, request: web.Request) -> web.Response:
        self._channel(request)
        return _json(self._message_with_reactions(self._message(request)))

    def _edit(self, message: FakeMessage, body: dict[str, Any], files: list[StoredFile]) -> None:
        if "content" in body:
            message.content = body["content"] or ""
            message.payload["content"] = message.content
        if "embeds" in body:
            message.payload["embeds"] = body["embeds"] or []
        if "components" in body:
            message.payload["components"] = body["components"] or []
        if files:
            channel = self.channels[message.channel_id]
            message.files = list(message.files) + files
            for file in files:
                attachment_id, url = self._cdn_url(file, channel.id)
                message.payload["attachments"].append(attachment_payload(attachment_id, file, url))
        message.payload["flags"] = message.payload.get("flags", 0) & ~128  # no longer loading
        message.edits += 1
        self._touch()

    async def _patch_message(self, request: web.Request) -> web.Response:
        self._channel(request)
        message = self._message(request)
        body, files = await self._read_body(request)
        self._edit(message, body, files)
        return _json(message.payload)

    async def _delete_message(self, request: web.Request) -> web.Response:
        self._channel(request)
        message = self._message(request)
        message.deleted = True
        self._touch()
        return web.Response(status=204)

    async def _put_reaction(self, request: web.Request) -> web.Response:
        self._channel(request)
        message = self._message(request)
        await self._add_reaction(self.bot_user, message.id, unquote(request.match_info["emoji"]))
        return web.Response(status=204)

    async def _delete_reaction(self, request: web.Request) -> web.Response:
        self._channel(request)
        message = self._message(request)
        who = request.match_info["user"]
        user = self.bot_user if who == "@me" else self.users[int(who)]
        await self._remove_reaction(user, message.id, unquote(request.match_info["emoji"]))
        return web.Response(status=204)

    async def _typing(self, request: web.Request) -> web.Response:
        self.typing.append(self._channel(request).id)
        self._touch()
        return web.Response(status=204)

    async def _get_guild(self, request: web.Request) -> web.Response:
        guild = self.guilds.get(int(request.match_info["guild"]))
        if guild is None:
            raise web.HTTPNotFound()
        return _json(guild.payload())

    async def _get_guild_channels(self, request: web.Request) -> web.Response:
        guild = self.guilds.get(int(request.match_info["guild"]))
        if guild is None:
            raise web.HTTPNotFound()
        return _json([c.payload() for c in guild.channels.values()])

    async def _get_member(self, request: web.Request) -> web.Response:
        user = self.users.get(int(request.match_info["user"]))
        if user is None:
            raise web.HTTPNotFound()
        return _json(user.member())

    def _interaction_for(self, request: web.Request) -> FakeInteraction:
        interaction = self.interactions.get(request.match_info["token"])
        if interaction is None:
            raise web.HTTPNotFound()
        return interaction

    async def _callback(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for(request)
        if interaction.callbacks:
            return self._error(400, 40060, "Interaction has already been acknowledged.")
        body, files = await self._read_body(request)
        kind = body["type"]
        data = body.get("data") or {}
        interaction.callbacks.append((kind, data, time.monotonic() - interaction.created))
        response: dict[str, Any] = {"interaction": {
            "id": str(interaction.id), "type": interaction.type,
            "response_message_loading": kind == DEFERRED_CHANNEL_MESSAGE,
            "response_message_ephemeral": bool(data.get("flags", 0) & 64),
        }}
        channel = self.channels[interaction.channel_id]
        if kind in (CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE):
            if (error := self._check_upload(channel, files)) is not None:
                return error
            message = self._create_message(
                channel, self.bot_user, data.get("content") or "", files,
                embeds=data.get("embeds"), interaction=interaction,
                components=data.get("components"),
                flags=(data.get("flags", 0) & 64)
                | (128 if kind == DEFERRED_CHANNEL_MESSAGE else 0),  # 128: "thinking..."
            )
            interaction.original_message_id = message.id
            response["interaction"]["response_message_id"] = str(message.id)
            response["resource"] = {"type": kind, "message": message.payload}
        self._touch()
        return _json(response)

    async def _followup(self, request: web.Request) -> web.Response:
        interaction = self._interaction_for(request)
        body, files = await self._read_body(request)
        channel = self.channels[interaction.channel_id]
        if (error := self._check_upload(channel, files)) is not None:
            return error
        original = self.messages.get(interaction.original_message_id or 0)
        if original is not None and original.payload.get("flags", 0) & 128:
            # Like Discord: the first followup after a deferral replaces "thinking...".
            self._edit(original, body, files)
            interaction.followup_ids.append(original.id)
            return _json(original.payload)
        message = self._create_message(channel, self.bot_user, body.get("content") or "", files,
                                       embeds=body.get("embeds"), interaction=interaction,
                                       components=body.get("components"),
                                       flags=body.get("flags", 0) & 64)
        interaction.followup_ids.append(message.id)
        self._touch()
        return _json(message.payload)

    def _webhook_message(self, request: web.Request) -> FakeMessage:
        interaction = self._interaction_for(request)
        key = request.match_info["message"]
        message_id = interaction.original_message_id if key == "@original" else int(key)
        if message_id is None or message_id not in self.messages:
            raise web.HTTPNotFound()
        return self.messages[message_id]

    async def _get_webhook_message(self, request: web.Request) -> web.Response:
        return _json(self._webhook_message(request).payload)

    async def _execute_webhook(self, request: web.Request) -> web.Response:
        if self.webhook_status >= 400:
            return self._error(self.webhook_status, 0, "webhook failure (test)")
        body, files = await self._read_body(request)
        self.webhook_posts.append((request.match_info["id"], body, files))
        self._touch()
        return web.Response(status=204)  # like Discord without ?wait=true

    async def _patch_webhook_message(self, request: web.Request) -> web.Response:
        message = self._webhook_message(request)
        body, files = await self._read_body(request)
        channel = self.channels[message.channel_id]
        if (error := self._check_upload(channel, message.files + files)) is not None:
            return error
        self._edit(message, body, files)
        return _json(message.payload)
