"""Telegram for tests: a local Bot API stand-in, the allowlisted chats, and the bridge's bot
on a background thread.

The stand-in, for the real python-telegram-bot client, is an aiohttp server on 127.0.0.1
(free port) in a background thread, answering
`POST /bot<token>/<method>` the way api.telegram.org does for the methods PTB uses
to start, poll, reply and stop: getMe, deleteWebhook, getUpdates (offset confirms,
`timeout` long-polls, `allowed_updates` filters), sendMessage (with an inline keyboard
in `reply_markup`), answerCallbackQuery, editMessageText, editMessageReplyMarkup,
setMyCommands, getMyCommands, close/logOut.
A wrong (or revoked) token gets 401 Unauthorized, an unknown method 404, a chat in
`blocked_chats` 403, all with Telegram's JSON error shape.

Tests enqueue user messages with `message_from(chat_id, text)` and button presses with
`button_press(sent, text)`, and read what the bot said in `sent` (every sendMessage, in
order), `callback_answers` (every answerCallbackQuery) and `edits` (every edit).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field

from aiohttp import web

# Shaped like a real token ("<bot id>:<secret>"), so a leak would look like one.
TOKEN = "7000000001:AAF-test-token-never-logged_x9Yz"
OWNER = 4242  # a private chat on the allowlist
DESK = -1001234567  # a supergroup on the allowlist
OUTSIDER = 999  # a private chat that is not

BOT_USER = {
    "id": 700000001,
    "is_bot": True,
    "first_name": "Control panel",
    "username": "controlpanel_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass(frozen=True)
class Sent:
    chat_id: int
    text: str
    params: dict = field(compare=False, repr=False)
    message_id: int = field(default=0, compare=False)


def _json_param(value):
    """A parameter PTB sends as JSON text in a form (reply_markup, allowed_updates), or as JSON."""
    return json.loads(value) if isinstance(value, str) else value


def buttons(sent: Sent) -> list[tuple[str, str]]:
    """The inline keyboard under a sent message: (text, callback_data) pairs, row by row."""
    markup = _json_param(sent.params.get("reply_markup")) or {}
    return [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]


def _chat(chat_id: int) -> dict:
    if chat_id > 0:
        return {"id": chat_id, "type": "private", "first_name": "Owner"}
    return {
        "id": chat_id,
        "type": "supergroup" if str(chat_id).startswith("-100") else "group",
        "title": "Desk",
    }


class BotApiStandIn:
    def __init__(self, token: str) -> None:
        self.token = token
        self.revoked = False
        self.blocked_chats: set[int] = set()
        self.calls: list[str] = []  # every method called, in order
        self.unknown_calls: list[str] = []
        self.sent: list[Sent] = []
        self.callback_answers: list[dict] = []  # answerCallbackQuery parameters, in order
        self.edits: list[dict] = []  # editMessageText / editMessageReplyMarkup parameters, in order
        self._messages: dict[int, dict] = {}  # the bot's messages by message_id, as last edited
        self._allowed_updates: list[str] | None = None  # Telegram remembers the last getUpdates' list
        self._callback_ids = itertools.count(1)
        self.commands: list[dict] = []
        self._updates: list[dict] = []
        self._confirmed_below = 0  # Telegram forgets updates below the last offset it was given
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._lock = threading.Lock()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # -- test side --------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def message_from(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        sent_at: float | None = None,
    ) -> int:
        """Queue a new message in chat `chat_id`, as Telegram would deliver it; return its update_id."""
        update_id = next(self._update_ids)
        message = {
            "message_id": next(self._message_ids),
            "date": int(sent_at if sent_at is not None else time.time()),
            "chat": _chat(chat_id),
            "from": {"id": user_id or abs(chat_id), "is_bot": False, "first_name": "User"},
            "text": text,
        }
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(command)}]
        with self._lock:
            self._updates.append({"update_id": update_id, "message": message})
        return update_id

    def button_press(
        self, sent: Sent, text: str, *, chat_id: int | None = None, user_id: int | None = None
    ) -> int:
        """Queue a press on the inline button labelled `text` under the bot's message `sent`, by
        `user_id` (default: the private chat's owner, as in `message_from`); return its update_id."""
        data = dict(buttons(sent))[text]
        chat_id = sent.chat_id if chat_id is None else chat_id
        update_id = next(self._update_ids)
        with self._lock:
            message = self._messages[sent.message_id]
        query = {
            "id": str(next(self._callback_ids)),
            "from": {"id": user_id or abs(chat_id), "is_bot": False, "first_name": "User"},
            "message": message,
            "chat_instance": f"ci{chat_id}",
            "data": data,
        }
        with self._lock:
            self._updates.append({"update_id": update_id, "callback_query": query})
        return update_id

    def wait_callback_answers(self, count: int, timeout_s: float = 10.0) -> list[dict]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.callback_answers) >= count:
                    return list(self.callback_answers)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} answerCallbackQuery calls, got {self.callback_answers!r}")

    def confirmed(self, update_id: int) -> bool:
        """Whether the bot has confirmed (offset past) `update_id`."""
        with self._lock:
            return self._confirmed_below > update_id

    def sent_to(self, chat_id: int) -> list[str]:
        with self._lock:
            return [s.text for s in self.sent if s.chat_id == chat_id]

    def wait_sent(self, count: int, timeout_s: float = 10.0) -> list[Sent]:
        """Wait until at least `count` messages were sent; return them all."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.sent) >= count:
                    return list(self.sent)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} sendMessage calls, got {self.sent!r}")

    def wait_call(self, method: str, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while method not in self.calls:
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} was never called; calls: {self.calls!r}")
            time.sleep(0.01)

    # -- server side ------------------------------------------------------------

    @staticmethod
    def _ok(result) -> web.Response:
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(status: int, description: str) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": status, "description": description}, status=status
        )

    async def _params(self, request: web.Request) -> dict:
        if request.content_type == "application/json":
            return await request.json()
        form = await request.post()
        return {key: value for key, value in form.items() if isinstance(value, str)}

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        if not path.startswith("bot") or "/" not in path:
            return self._error(404, "Not Found")
        token, method = path[3:].split("/", 1)
        if token != self.token or self.revoked:
            return self._error(401, "Unauthorized")
        params = await self._params(request)
        name = method.lower()
        with self._lock:
            self.calls.append(method)
        handler = {
            "getme": self._get_me,
            "deletewebhook": self._true,
            "close": self._true,
            "logout": self._true,
            "setmycommands": self._set_my_commands,
            "getmycommands": self._get_my_commands,
            "deletemycommands": self._true,
            "getupdates": self._get_updates,
            "sendmessage": self._send_message,
            "answercallbackquery": self._answer_callback_query,
            "editmessagetext": self._edit_message,
            "editmessagereplymarkup": self._edit_message,
        }.get(name)
        if handler is None:
            with self._lock:
                self.unknown_calls.append(method)
            return self._error(404, "Not Found: method not found")
        return await handler(params)

    async def _get_me(self, params: dict) -> web.Response:
        return self._ok(BOT_USER)

    async def _true(self, params: dict) -> web.Response:
        return self._ok(True)

    async def _set_my_commands(self, params: dict) -> web.Response:
        commands = params.get("commands", "[]")
        self.commands = json.loads(commands) if isinstance(commands, str) else commands
        return self._ok(True)

    async def _get_my_commands(self, params: dict) -> web.Response:
        return self._ok(self.commands)

    async def _get_updates(self, params: dict) -> web.Response:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout_s = float(params.get("timeout") or 0)
        with self._lock:
            if params.get("allowed_updates") is not None:
                self._allowed_updates = _json_param(params["allowed_updates"]) or None
            if offset > 0:
                self._confirmed_below = max(self._confirmed_below, offset)
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                # Telegram never delivers an update of a type the bot did not ask for.
                allowed = self._allowed_updates
                pending = [u for u in self._updates if allowed is None or set(u) & set(allowed)][:limit]
            if pending or self._closing or self.revoked or time.monotonic() >= deadline:
                return self._ok(pending)
            await asyncio.sleep(0.01)

    async def _send_message(self, params: dict) -> web.Response:
        try:
            chat_id = int(params["chat_id"])
            text = params["text"]
        except (KeyError, ValueError):
            return self._error(400, "Bad Request: chat_id and text are required")
        if not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        if len(text) > 4096:
            return self._error(400, "Bad Request: message is too long")
        if chat_id in self.blocked_chats:
            return self._error(403, "Forbidden: bot was blocked by the user")
        message = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": _chat(chat_id),
            "from": BOT_USER,
            "text": text,
        }
        if params.get("reply_markup"):
            message["reply_markup"] = _json_param(params["reply_markup"])
        with self._lock:
            self.sent.append(Sent(chat_id, text, dict(params), message["message_id"]))
            self._messages[message["message_id"]] = message
        return self._ok(message)

    async def _answer_callback_query(self, params: dict) -> web.Response:
        if not params.get("callback_query_id"):
            return self._error(400, "Bad Request: callback_query_id is required")
        with self._lock:
            self.callback_answers.append(dict(params))
        return self._ok(True)

    async def _edit_message(self, params: dict) -> web.Response:
        try:
            chat_id, message_id = int(params["chat_id"]), int(params["message_id"])
        except (KeyError, ValueError):
            return self._error(400, "Bad Request: chat_id and message_id are required")
        with self._lock:
            message = self._messages.get(message_id)
            if message is None or message["chat"]["id"] != chat_id:
                return self._error(400, "Bad Request: message to edit not found")
            edited = dict(message, edit_date=int(time.time()))
            if "text" in params:
                edited["text"] = params["text"]
            edited.pop("reply_markup", None)  # an edit without reply_markup removes the keyboard
            if params.get("reply_markup"):
                edited["reply_markup"] = _json_param(params["reply_markup"])
            if edited.get("text") == message.get("text") and edited.get("reply_markup") == message.get(
                "reply_markup"
            ):
                return self._error(400, "Bad Request: message is not modified")
            self._messages[message_id] = edited
            self.edits.append(dict(params))
        return self._ok(edited)

    # -- lifecycle --------------------------------------------------------------

    def start(self, port: int = 0) -> BotApiStandIn:
        started = threading.Event()

        async def serve() -> None:
            app = web.Application()
            app.router.add_route("*", "/{path:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", port)
            await site.start()
            self.port = self._runner.addresses[0][1]
            started.set()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            self._loop.run_until_complete(serve())
            self._loop.run_forever()
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=run, name="bot-api-standin", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the Bot API stand-in did not start")
        return self

    def stop(self) -> None:
        if self._closing:
            return
        self._closing = True  # pending long polls answer at once
        time.sleep(0.05)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


class BotThread:
    """`bot_main` on its own event loop in a background thread, as `run_telegram` runs it."""

    def __init__(self, bot_api: BotApiStandIn, **options):
        self.bot_api = bot_api
        # The alert watch only where a test asks for it (it reads the database from a thread).
        self.options = {"poll_timeout_s": 1.0, "retry_s": 0.2, "alert_watch_s": None, **options}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stop_event: asyncio.Event | None = None
        self.application = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._main, name="telegram-bot", daemon=True)

    def _main(self) -> None:
        from telegram_bridge.bot import application_build, bot_main

        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.stop_event = asyncio.Event()
            self.application = application_build()
            await bot_main(self.stop_event, application=self.application, **self.options)

        try:
            asyncio.run(main())
        except BaseException as error:
            self.error = error

    def start(self, timeout_s: float = 10.0) -> BotThread:
        self.thread.start()
        return self.wait_running(timeout_s)

    def wait_running(self, timeout_s: float = 10.0) -> BotThread:
        deadline = time.monotonic() + timeout_s
        while not (self.application is not None and self.application.running):
            assert self.error is None, repr(self.error)
            assert time.monotonic() < deadline, f"bot not polling; calls: {self.bot_api.calls}"
            time.sleep(0.01)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.thread.is_alive() and self.loop is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(timeout=timeout_s)
        assert not self.thread.is_alive(), "bot did not stop"

    def ignored_chats(self):
        from telegram_bridge.handlers import IGNORED_CHATS_KEY

        return dict(self.application.bot_data.get(IGNORED_CHATS_KEY, {}))
