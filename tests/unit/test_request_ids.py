"""Request ids: random and unique, and a forked process never repeats the ids its
parent has yet to give."""

from __future__ import annotations

import os
import re

from msgtrail.web import request_log


def test_request_ids_are_unique_and_a_forked_process_has_its_own() -> None:
    ids = [request_log._ids.next() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)
    # Nothing in them counts requests: no shared prefix, no common suffix.
    assert len({i[:8] for i in ids}) > 990 and len({i[-8:] for i in ids}) > 990
    parent_next = request_log._ids.pool[request_log._ids.at:request_log._ids.at + 16].hex()
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
    assert child != parent_next and child not in ids
