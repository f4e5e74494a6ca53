"""Request ids: unique within a process, and a forked process (`serve --processes`)
never repeats its parent's."""

from __future__ import annotations

import os
import re

from msgtrail.web import request_log


def test_request_ids_are_unique_and_a_forked_process_has_its_own() -> None:
    ids = [request_log._ids.next() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one id, then out without running anything of pytest's
        os.write(write, request_log._ids.next().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert re.fullmatch("[0-9a-f]{32}", child)
    assert child[:16] != request_log._ids.prefix and child not in ids
