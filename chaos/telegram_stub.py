"""A minimal Telegram Bot API for the chaos run's `telegram` process: enough for
python-telegram-bot to start, long-poll (no user ever writes) and send alerts, which it
keeps so the run can count them and grep them for secrets. aiohttp on 127.0.0.1, in a
thread of the driver."""

from __future__ import annotations

import asyncio
import threading
import time

from aiohttp import web

BOT_USER = {"id": 700000002, "is_bot": True, "first_name": "chaos", "username": "chaos_bot"}


class BotApiStub:
    def __init__(self, token: str) -> None:
        self.token = token
        self.sent: list[str] = []
        self.calls = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        token, _, method = path.removeprefix("bot").partition("/")
        self.calls += 1
        if token != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        method = method.lower()
        if method == "getme":
            return web.json_response({"ok": True, "result": BOT_USER})
        if method == "getupdates":
            await asyncio.sleep(min(float(params.get("timeout") or 0), 1.0))
            return web.json_response({"ok": True, "result": []})
        if method == "sendmessage":
            self.sent.append(str(params.get("text", "")))
            chat = {"id": int(params.get("chat_id", 0)), "type": "private", "first_name": "owner"}
            message = {"message_id": len(self.sent), "date": int(time.time()), "chat": chat, "text": "ok"}
            return web.json_response({"ok": True, "result": message})
        if method == "getmycommands":
            return web.json_response({"ok": True, "result": []})
        return web.json_response({"ok": True, "result": True})

    def start(self) -> BotApiStub:
        started = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_route("*", "/{path:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            self._loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            started.set()
            self._loop.run_forever()

        threading.Thread(target=serve, name="telegram-stub", daemon=True).start()
        if not started.wait(10):
            raise RuntimeError("the Telegram stand-in did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
