"""Run the chat service: ``python -m examples.chat_service --redis-url URL [--workers N]``.

uvicorn serves ``examples.chat_service.app:create_app`` with ``--workers``
processes (default 2) sharing one listening socket; its supervisor replaces a
worker that dies. This is what ``uvicorn --factory --workers N`` does, except
that the socket is bound here first, so that ``--port 0`` can report the port
it got. ``--port 0`` picks a free port. The first line on stdout is
``chat service listening on http://HOST:PORT``, printed once the socket accepts
connections (they queue until a worker takes them).
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from ctxmigrate.shim.redis_store import public_address

from .app import Settings

APP = "examples.chat_service.app:create_app"


def parse_arguments(argv: list[str] | None) -> tuple[argparse.Namespace, Settings]:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog="python -m examples.chat_service",
        description="A websocket chat service whose conversations live in Redis.",
    )
    parser.add_argument("--redis-url", default=defaults.redis_url, help="%(default)s")
    parser.add_argument("--key-prefix", default=defaults.key_prefix, help="%(default)s")
    parser.add_argument("--host", default="127.0.0.1", help="%(default)s")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (%(default)s)")
    parser.add_argument(
        "--agent-delay",
        type=float,
        default=defaults.agent_delay,
        help="seconds of simulated agent work per message (%(default)s)",
    )
    parser.add_argument(
        "--busy-timeout",
        type=float,
        default=defaults.busy_timeout,
        help="seconds a message waits for its conversation (%(default)s)",
    )
    parser.add_argument(
        "--lease-ttl",
        type=float,
        default=defaults.lease_ttl,
        help="seconds a conversation stays locked after its worker died mid-message (%(default)s)",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn's (%(default)s)")
    arguments = parser.parse_args(argv)
    if arguments.workers < 1:
        parser.error("--workers must be at least 1")
    for name in ("agent_delay", "busy_timeout"):
        if not getattr(arguments, name) >= 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    if not arguments.lease_ttl > 0:
        parser.error("--lease-ttl must be > 0")
    settings = Settings(
        redis_url=arguments.redis_url,
        key_prefix=arguments.key_prefix,
        agent_delay=arguments.agent_delay,
        busy_timeout=arguments.busy_timeout,
        lease_ttl=arguments.lease_ttl,
    )
    return arguments, settings


def main(argv: list[str] | None = None) -> int:
    arguments, settings = parse_arguments(argv)
    # The workers are separate processes that import the app by name: the
    # settings travel in their environment.
    os.environ.update(settings.to_environment())
    config = uvicorn.Config(
        APP,
        factory=True,
        host=arguments.host,
        port=arguments.port,
        workers=arguments.workers,
        log_level=arguments.log_level,
        access_log=False,
    )
    sock = config.bind_socket()
    # Listen now, so that clients connecting before the workers are up queue
    # in the backlog instead of being refused.
    sock.listen(config.backlog)
    host, port = sock.getsockname()[:2]
    print(
        f"chat service listening on http://{host}:{port} "
        f"({arguments.workers} workers, Redis at {public_address(settings.redis_url)})",
        flush=True,
    )
    if arguments.workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    elif "target" in inspect.signature(Multiprocess).parameters:
        # uvicorn before 0.51 hands each worker the server's run method itself.
        supervisor: Any = Multiprocess  # typed by the installed, newer uvicorn
        supervisor(config, target=uvicorn.Server(config).run, sockets=[sock]).run()
    else:
        Multiprocess(config, sockets=[sock]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
