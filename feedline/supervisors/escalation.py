"""Exit the process when the root supervisor gives up, so honcho/systemd restart it.

Why `os._exit`: this runs on the root supervisor's actor thread, not the main thread.
- `sys.exit()` there only raises `SystemExit` in that thread: pykka then stops every actor,
  but the main thread lives on, so the process stays up without its pipeline (and would
  exit 0 whenever main returns).
- Signalling ourselves (SIGTERM) runs the handler on the main thread, and only when it next
  executes Python code; the pipeline's SIGTERM handler means "graceful shutdown, exit 0",
  which would tell systemd (Restart=on-failure) that all is well.
- `_thread.interrupt_main()` raises KeyboardInterrupt in the main thread, which the main
  code may catch or be blocked in C code and never see.
`os._exit` ends the process at once from any thread with the code we choose. What it skips
we do first: the failing supervisor has already stopped its children in reverse order, and
logs and stdio are flushed here. Offsets not yet committed are replayed by Kafka on restart
(at-least-once, idempotent writes), so nothing is lost. A process that wants a graceful exit
instead can inject its own `on_escalate` (e.g. set an event the main thread waits on, then
close the Kafka consumer and `sys.exit(EXIT_CODE)`).
"""

import contextlib
import logging
import os
import sys

logger = logging.getLogger(__name__)

EXIT_CODE = 70  # EX_SOFTWARE: non-zero, and distinct from a signal's 128+n


def exit_process(error: BaseException) -> None:
    """Log why, flush what would be lost, and end the process with `EXIT_CODE`."""
    logger.critical("root supervisor gave up, exiting with %d: %s", EXIT_CODE, error)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken pipe
            stream.flush()
    os._exit(EXIT_CODE)
