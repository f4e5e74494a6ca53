"""How a `serve` process stops: the first SIGTERM (or Ctrl-C) drains, the second
hurries.

- Draining: every request that arrives from then on is answered 503 with
  `Retry-After` (msgtrail.web.draining), and the port stays open
  `shutdown_delay_seconds` (0 by default) so that a load balancer sees `/readyz` fail
  and takes the process out before it closes. Then uvicorn stops accepting and
  finishes the requests in flight; the workers get their grace period.
- Hurrying: a second signal cuts the delay and the grace period short: running
  exports are handed back at once (no file, no attempt spent).

uvicorn installs its own signal handlers before the application starts; `install`,
called as the application starts, puts these in front of them.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("msgtrail.runtime.shutdown")

_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Shutdown:
    """This process's way to its end (signals are the process's, so is this)."""

    def __init__(self) -> None:
        self.draining = threading.Event()
        self.hurry = threading.Event()

    def install(self, delay: float) -> None:
        """Put `on_signal` in front of the handlers uvicorn installed: it passes the
        first signal on after `delay` seconds, a second one at once."""
        if threading.current_thread() is not threading.main_thread():
            return  # (an app under a test client: no signals to take)
        for signum in _SIGNALS:
            passed_on = signal.getsignal(signum)
            if callable(passed_on):
                signal.signal(signum, self._handler(passed_on, delay))

    def _handler(self, passed_on: Callable[[int, FrameType | None], Any], delay: float
                 ) -> Callable[[int, FrameType | None], None]:
        timer: list[threading.Timer] = []

        def on_signal(signum: int, frame: FrameType | None) -> None:
            if self.draining.is_set():
                self.hurry.set()
                for pending in timer:
                    pending.cancel()
                log.info("second signal: handing running exports back now")
                passed_on(signum, frame)
                return
            self.draining.set()
            log.info("stopping: new requests get 503; in %s s the port closes", delay)
            if delay <= 0:
                passed_on(signum, frame)
                return
            timer.append(threading.Timer(delay, passed_on, (signum, None)))
            timer[0].daemon = True
            timer[0].start()

        return on_signal
