"""The chat service: one Starlette app, two websocket handlers, sessions in Redis.

``/ws`` is the session-first handler an application copies: every message is
one unit of work inside ``async with manager.conversation(user_id, thread_id)``,
which has the conversation to itself across every worker process sharing the
Redis store, and saves ``conversation_state`` when the block exits normally.
The reply (the acknowledgement) is sent only after the block has exited, so an
acknowledged message is a stored message.

``/ws/legacy`` is the pattern being migrated away from, kept as the benchmark's
baseline: a fresh context per message, built by the application's legacy
factory; nothing is persisted, and every message gets a new ``run_id``.

Protocol: JSON text frames. A request is
``{"user_id": ..., "thread_id": ..., "message_id": ..., "text": ...}``; the reply
is ``{"ok": true, "message_id": ..., "run_id": ..., "stored": N, "worker": PID}``
(``stored``: how many messages the conversation holds after this one) or
``{"ok": false, "message_id": ..., "error": "...", "worker": PID}``. A store
outage or a conversation that stays busy is answered with such an error and
the connection stays open: the client may retry, and nothing it was told
failed was stored.

Settings come from the environment (``CHAT_*``, see :class:`Settings`), because
uvicorn's worker processes import the app by name: ``python -m
examples.chat_service`` sets them from its command line.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ctxmigrate.shim import SessionError, UserExecutionContext, UserSessionManager
from ctxmigrate.shim.redis_store import RedisSessionStore

ENVIRONMENT_PREFIX = "CHAT_"


@dataclass(frozen=True)
class Settings:
    """What every worker needs to agree on; read from ``CHAT_*`` environment variables."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "chat"
    # Simulated agent work between reading the conversation and writing it back:
    # the window in which a concurrent message of the same conversation races.
    agent_delay: float = 0.0
    # How long a message waits for its conversation before ConversationBusyError.
    busy_timeout: float = 10.0
    # How long a conversation stays locked after its holder died mid-message
    # (a live holder renews its lease while it works).
    lease_ttl: float = 30.0
    idle_timeout: float = 1800.0

    def to_environment(self) -> dict[str, str]:
        return {
            f"{ENVIRONMENT_PREFIX}REDIS_URL": self.redis_url,
            f"{ENVIRONMENT_PREFIX}KEY_PREFIX": self.key_prefix,
            f"{ENVIRONMENT_PREFIX}AGENT_DELAY": repr(self.agent_delay),
            f"{ENVIRONMENT_PREFIX}BUSY_TIMEOUT": repr(self.busy_timeout),
            f"{ENVIRONMENT_PREFIX}LEASE_TTL": repr(self.lease_ttl),
            f"{ENVIRONMENT_PREFIX}IDLE_TIMEOUT": repr(self.idle_timeout),
        }

    @classmethod
    def from_environment(cls, environment: dict[str, str] | None = None) -> Settings:
        source = dict(os.environ) if environment is None else environment
        defaults = cls()

        def number(name: str, default: float) -> float:
            text = source.get(f"{ENVIRONMENT_PREFIX}{name}")
            if text is None:
                return default
            try:
                value = float(text)
            except ValueError:
                raise ValueError(
                    f"{ENVIRONMENT_PREFIX}{name} must be a number of seconds, got {text!r}"
                ) from None
            if not value >= 0:
                raise ValueError(f"{ENVIRONMENT_PREFIX}{name} must be >= 0, got {text!r}")
            return value

        return cls(
            redis_url=source.get(f"{ENVIRONMENT_PREFIX}REDIS_URL", defaults.redis_url),
            key_prefix=source.get(f"{ENVIRONMENT_PREFIX}KEY_PREFIX", defaults.key_prefix),
            agent_delay=number("AGENT_DELAY", defaults.agent_delay),
            busy_timeout=number("BUSY_TIMEOUT", defaults.busy_timeout),
            lease_ttl=number("LEASE_TTL", defaults.lease_ttl),
            idle_timeout=number("IDLE_TIMEOUT", defaults.idle_timeout),
        )


@dataclass(frozen=True)
class ChatMessage:
    user_id: str
    thread_id: str
    message_id: str
    text: str


class BadRequest(ValueError):
    """A frame that is not a chat message; the reply names what is wrong."""


def parse_message(frame: str) -> ChatMessage:
    try:
        data = json.loads(frame)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"a message must be a JSON object: {exc}") from None
    if not isinstance(data, dict):
        raise BadRequest("a message must be a JSON object")
    fields = {}
    for name in ("user_id", "thread_id", "message_id", "text"):
        value = data.get(name)
        if not isinstance(value, str):
            raise BadRequest(f"{name} must be a string")
        fields[name] = value
    return ChatMessage(**fields)


def create_user_execution_context(
    user_id: str, thread_id: str, run_id: str | None = None
) -> UserExecutionContext:
    """The application's legacy factory: a brand-new context on every call."""
    return UserExecutionContext(user_id, thread_id, run_id or f"run_{uuid.uuid4().hex}")


async def answer_in_conversation(
    manager: UserSessionManager[UserExecutionContext],
    message: ChatMessage,
    *,
    connection_id: str,
    agent_delay: float,
) -> dict[str, Any]:
    """The session-first handler: read, think, write, all inside the conversation."""
    async with manager.conversation(
        message.user_id, message.thread_id, websocket_connection_id=connection_id
    ) as context:
        # Read, let the agent work, write: no other message of this
        # conversation runs in between, on any worker.
        messages = list(context.conversation_state.get("messages", []))
        await asyncio.sleep(agent_delay)  # the agent works
        messages.append({"id": message.message_id, "text": message.text})
        context.conversation_state["messages"] = messages
        run_id = context.run_id
    # Past the block: saved (or the block raised and nothing was acknowledged).
    return {"ok": True, "message_id": message.message_id, "run_id": run_id, "stored": len(messages)}


async def answer_legacy(message: ChatMessage, *, agent_delay: float) -> dict[str, Any]:
    """The legacy handler: a fresh context per message, nothing persisted."""
    context = create_user_execution_context(message.user_id, message.thread_id)
    messages = context.conversation_state.setdefault("messages", [])
    await asyncio.sleep(agent_delay)  # the agent works
    messages.append({"id": message.message_id, "text": message.text})
    return {
        "ok": True,
        "message_id": message.message_id,
        "run_id": context.run_id,
        "stored": len(messages),
    }


Answer = Callable[[ChatMessage, str], Awaitable[dict[str, Any]]]


async def serve_connection(websocket: WebSocket, answer: Answer) -> None:
    """Answer every frame of one connection in order, until the client leaves."""
    await websocket.accept()
    connection_id = f"ws_{uuid.uuid4().hex}"
    worker = os.getpid()
    try:
        while True:
            frame = await websocket.receive_text()
            message_id: str | None = None
            try:
                message = parse_message(frame)
                message_id = message.message_id
                reply = await answer(message, connection_id)
            except (BadRequest, SessionError) as exc:
                # SessionError covers the store being unavailable, a conversation
                # that stayed busy, an invalid id and a lost lease: each message
                # names the problem, and nothing was stored for this message.
                reply = {"ok": False, "message_id": message_id, "error": _describe(exc)}
            reply["worker"] = worker
            await websocket.send_text(json.dumps(reply))
    except WebSocketDisconnect:
        return


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def create_app(settings: Settings | None = None) -> Starlette:
    """The ASGI app (uvicorn calls this in every worker: ``--factory``)."""
    settings = Settings.from_environment() if settings is None else settings
    store = RedisSessionStore(settings.redis_url, key_prefix=settings.key_prefix)
    manager = UserSessionManager(
        store=store,
        idle_timeout=settings.idle_timeout,
        conversation_wait=settings.busy_timeout,
        conversation_lease_ttl=settings.lease_ttl,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # No ping at startup: a worker that replaces a dead one while Redis is
        # briefly down still starts, answers errors, and recovers with Redis.
        async with manager:  # background idle cleanup for the worker's lifetime
            yield
        await store.aclose()  # the manager does not close a store it was given

    async def conversation_endpoint(websocket: WebSocket) -> None:
        async def answer(message: ChatMessage, connection_id: str) -> dict[str, Any]:
            return await answer_in_conversation(
                manager, message, connection_id=connection_id, agent_delay=settings.agent_delay
            )

        await serve_connection(websocket, answer)

    async def legacy_endpoint(websocket: WebSocket) -> None:
        async def answer(message: ChatMessage, connection_id: str) -> dict[str, Any]:
            return await answer_legacy(message, agent_delay=settings.agent_delay)

        await serve_connection(websocket, answer)

    async def health(request: Request) -> JSONResponse:
        try:
            await store.ping()
        except SessionError as exc:
            return JSONResponse({"ok": False, "error": _describe(exc)}, status_code=503)
        return JSONResponse({"ok": True, "worker": os.getpid()})

    return Starlette(
        routes=[
            WebSocketRoute("/ws", conversation_endpoint),
            WebSocketRoute("/ws/legacy", legacy_endpoint),
            Route("/healthz", health),
        ],
        lifespan=lifespan,
    )
