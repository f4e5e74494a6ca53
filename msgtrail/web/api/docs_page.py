"""`/docs`: Swagger UI on the API's own document, served by msgtrail from the
swagger-ui-bundle-v2 package (no CDN: it works offline, behind a firewall, in an
air-gapped network), under a Content-Security-Policy that allows this origin only."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

router = APIRouter(include_in_schema=False)

_INIT = Path(__file__).parent / "docs_assets" / "init.js"
# Swagger UI draws its icons as data: images; its styles are set from script.
HEADERS = {"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                                      "style-src 'self' 'unsafe-inline'; object-src 'none'; "
                                      "frame-ancestors 'none'; base-uri 'none'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>msgtrail API</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""


@router.get("/docs")
def docs() -> HTMLResponse:
    return HTMLResponse(PAGE, headers=HEADERS)


@router.get("/docs/init.js")
def docs_init() -> FileResponse:
    return FileResponse(_INIT, media_type="text/javascript", headers=HEADERS)


def assets() -> StaticFiles:
    """Swagger UI's own files, as the package ships them."""
    return StaticFiles(directory=str(swagger_ui_path))
