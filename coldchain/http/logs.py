"""The service's logging: records of ``coldchain`` at the configured level and everything else at WARNING, written
to standard error by one thread through a queue, so that a log line never blocks the event loop on a slow pipe.

The handler is installed once per process; every app made in the process (a worker makes one, the tests make
hundreds) only sets the level of ``coldchain``. Litestar's own logging configuration starts a listener thread for
every app it configures and keeps each one alive until the process exits.
"""

from __future__ import annotations

import atexit
import logging
from functools import cache
from logging.handlers import QueueHandler, QueueListener
from queue import SimpleQueue

__all__ = ["configure_logging"]

_FORMAT = "%(levelname)s - %(asctime)s - %(name)s - %(module)s - %(message)s"


def configure_logging(level: str) -> None:
    """Log ``coldchain`` at ``level`` (a name such as ``"info"``) through the process's one queue handler."""
    _install_handler()
    logging.getLogger("coldchain").setLevel(level.upper())


@cache
def _install_handler() -> None:
    stream = logging.StreamHandler()
    stream.setFormatter(logging.Formatter(_FORMAT))
    queue: SimpleQueue[logging.LogRecord] = SimpleQueue()
    listener = QueueListener(queue, stream)
    listener.start()
    atexit.register(listener.stop)  # what is queued is written before the process ends
    root = logging.getLogger()
    root.addHandler(QueueHandler(queue))
    root.setLevel(logging.WARNING)
