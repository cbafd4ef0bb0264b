"""What keeps ``glassnet serve`` answering under a flood: bounded connections, and a log that
says a repeated error once.

uvicorn keeps a connection open for as long as its client does, even one that never sends a
request (a half-open connection): a thousand of them hold every file descriptor, and the server
stops answering anyone. ``GuardedProtocol`` is uvicorn's own HTTP/1.1 protocol with two rules
added: a connection that has sent no request within ``REQUEST_TIMEOUT`` seconds is closed, and
beyond ``MAX_CONNECTIONS`` open at once the oldest connection still waiting for its request is
closed to make room (a real client sends its request at once, so it is never the one waiting).
"""

from __future__ import annotations

import logging
import resource
import time
from collections import OrderedDict
from typing import ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["MAX_CONNECTIONS", "REQUEST_TIMEOUT", "GuardedProtocol", "OncePerBurst", "guard"]

MAX_CONNECTIONS = 128  # open at once (the page opens a few)
REQUEST_TIMEOUT = 5.0  # seconds a new connection may take to send its request's headers


class GuardedProtocol(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, closing connections that send no request in time, and the
    oldest of those waiting when MAX_CONNECTIONS are open."""

    # Shared by the server's connections (one event loop): those with no request yet, oldest first
    waiting: ClassVar[OrderedDict] = OrderedDict()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        if len(self.connections) > MAX_CONNECTIONS:
            if self.waiting:  # make room: the longest-waiting connection goes
                oldest, _ = self.waiting.popitem(last=False)
                oldest.transport.close()
            else:  # every one is busy with a real request: this one waits for another time
                transport.close()
                return
        self.waiting[self] = self.loop.call_later(REQUEST_TIMEOUT, self._drop_if_waiting)

    def handle_events(self) -> None:
        super().handle_events()
        if self.scope is not None:  # a request has begun: no longer waiting
            self._stop_waiting()

    def connection_lost(self, exc) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def _stop_waiting(self) -> None:
        timer = self.waiting.pop(self, None)
        if timer is not None:
            timer.cancel()

    def _drop_if_waiting(self) -> None:
        if self.waiting.pop(self, None) is not None:
            self.transport.close()


class OncePerBurst(logging.Filter):
    """Lets a message through once, then counts its repeats, saying how many at most every
    ``every`` seconds: a flood of "Too many open files" is one line, not 255,000."""

    def __init__(self, every: float = 10.0):
        super().__init__()
        self.every = every
        self.seen: dict[str, list] = {}  # message -> [repeats since said, when last said]

    def filter(self, record: logging.LogRecord) -> bool:
        key = f"{record.name}:{record.getMessage()}"
        now = time.monotonic()
        seen = self.seen.get(key)
        if seen is None:
            self.seen[key] = [0, now]
            return True
        seen[0] += 1
        if now - seen[1] < self.every:
            return False
        record.msg = f"{record.getMessage()} (and {seen[0]:,} more times in {now - seen[1]:.0f} s)"
        record.args = ()
        seen[:] = [0, now]
        return True


def guard() -> dict:
    """Set the process up for serving (every file descriptor it may have, repeated log lines
    said once) and return the settings uvicorn runs with."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    once = OncePerBurst()
    for name in ("asyncio", "uvicorn.error"):
        logging.getLogger(name).addFilter(once)
    return {"http": GuardedProtocol, "timeout_keep_alive": 5, "backlog": 256}
