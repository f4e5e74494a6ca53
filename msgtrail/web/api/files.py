"""Export files of the local store, served as an S3 bucket would serve them.

A file is served only while its job is ready and unexpired: before that (and after)
the answer is S3's 404 NoSuchKey (403 AccessDenied for history reports, as OneSignal
documents them), so a client never sees a partial or stale file.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse, RedirectResponse

from msgtrail.audit import Actor
from msgtrail.export import jobs
from msgtrail.web.deps import Svc, remote

router = APIRouter(tags=["files"])

# How long the presigned URL a ready file redirects to (S3 mode) stays valid.
REDIRECT_SECONDS = 3600

NO_SUCH_KEY = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code>"
               "<Message>The specified key does not exist.</Message></Error>")


# History reports answer 403 until ready, as OneSignal documents for them.
ACCESS_DENIED = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                 "<Message>Access Denied</Message></Error>")


MEDIA_TYPES = {"gz": "application/gzip", "parquet": "application/vnd.apache.parquet",
               "csv": "text/csv", "jsonl": "application/x-ndjson"}


def _first_request_of_a_download(request: Request) -> bool:
    """A GET of the whole file or of its start: a client resuming or reading it in
    ranges makes more requests, a HEAD (a poll for readiness) downloads nothing."""
    wanted = request.headers.get("range", "")
    return request.method == "GET" and (not wanted or wanted.replace(" ", "").startswith(
        "bytes=0-"))


def not_ready(job: jobs.Job | None) -> Response:
    if job is not None and job.kind == "history":
        return Response(ACCESS_DENIED, status_code=403, media_type="application/xml")
    return Response(NO_SUCH_KEY, status_code=404, media_type="application/xml")


@router.get("/exports/{token}/{name}.manifest.json", summary="An export file's manifest",
            responses={404: {"description": "The file is not ready, expired or unknown"}})
def manifest(svc: Svc, token: str, name: str) -> Response:
    """What the file holds (rows, bytes, SHA-256 as served, columns, filter), served
    only while the file itself is: published with the job's ready state, after the
    file was written, and hidden with it when it expires."""
    job, ready = svc.ready_job(f"{token}/{name}")
    if not ready or job is None or not job.manifest:
        return Response(NO_SUCH_KEY, status_code=404, media_type="application/xml")
    return Response(job.manifest, media_type="application/json")


@router.get("/exports/{token}/{name}", summary="Download an export file",
            responses={403: {"description": "A history report not ready (yet)"},
                       404: {"description": "An export not ready, expired or unknown"}})
@router.head("/exports/{token}/{name}", summary="Whether an export file is ready")
def download(request: Request, svc: Svc, token: str, name: str) -> Response:
    key = f"{token}/{name}"
    job, ready = svc.ready_job(key)
    if not ready or job is None:
        return not_ready(job)
    served = svc.served(key, REDIRECT_SECONDS)
    if served is None:
        return not_ready(job)
    if _first_request_of_a_download(request):
        svc.downloaded(job, name, Actor("download", remote(request)))
    if served.url:  # S3: the store serves the bytes
        return RedirectResponse(served.url, status_code=307)
    media = MEDIA_TYPES[name.rsplit(".", 1)[-1]]
    if served.path:
        return FileResponse(served.path, media_type=media, filename=name)
    return Response(served.data, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
