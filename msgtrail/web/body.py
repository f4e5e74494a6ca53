"""Reading a request's body within a limit, for every route and page that takes one."""

from __future__ import annotations

from starlette.requests import Request

from msgtrail.errors import PayloadTooLarge

# A body over the limit is still read (and dropped) up to this many times the limit
# before the 413 is sent: a client that sends the whole body before it reads an answer
# (no `Expect: 100-continue`, as Python's urllib and requests do) would otherwise have
# its connection reset under it and never see the 413. Beyond this, it is cut off.
DRAIN_FACTOR = 4


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 once it passes `limit` bytes; nothing of it is kept then."""
    declared = request.headers.get("content-length", "")
    # A client waiting for `100 Continue` has sent nothing yet: answer it at once (the
    # server only says 100 Continue once the body is read). So for a body too large to
    # drain.
    if declared.isdigit() and int(declared) > limit and (
            "100-continue" in request.headers.get("expect", "").lower()
            or int(declared) > DRAIN_FACTOR * limit):
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            chunks.clear()
            if size > DRAIN_FACTOR * limit:
                break
            continue
        chunks.append(chunk)
    if size > limit:
        raise _too_large(limit)
    return b"".join(chunks)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"body: larger than {limit} bytes")
