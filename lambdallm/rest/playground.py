"""The chat playground at /playground: the static page (lambdallm/rest/static/) that talks to /v1 with the user's key.

The page's files are served here, in front of Connexion, needing no API key: they hold no secret, and the page
asks for the key before it calls the API. Each answer carries a strict Content-Security-Policy (only this origin's
scripts, styles and API; no inline code, no frames), so a script that got into the page could neither run nor
send the key anywhere else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from lambdallm.rest.problems import send_problem

PATH = "/playground"
STATIC = Path(__file__).resolve().parent / "static"
# The page's own files and the media type of each; anything else under /playground is a 404.
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    # Revalidated on each load (a cheap 304 by ETag), so a new release of the page is never half cached.
    "cache-control": "no-cache",
}


@dataclass(frozen=True)
class StaticFile:
    """One file of the page, read once at start."""

    body: bytes
    media_type: str
    etag: str


def page_files(folder: Path = STATIC) -> dict[str, StaticFile]:
    """The page's files by URL path: index.html at /playground, every other file at /playground/<name>."""
    files = {}
    for path in sorted(folder.iterdir()):
        if path.suffix in MEDIA_TYPES and path.is_file():
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            url = PATH if path.name == "index.html" else f"{PATH}/{path.name}"
            files[url] = StaticFile(body, MEDIA_TYPES[path.suffix], etag)
    return files


class Playground:
    """ASGI middleware serving the page's files (GET and HEAD) at /playground, with its security headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.files = page_files()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == PATH or path.startswith(PATH + "/")):
            await self.app(scope, receive, send)
            return
        if path == PATH + "/":  # the page's relative links work from /playground only
            # A relative Location: not built from the Host header, and right under any path prefix of a proxy.
            location = "../" + PATH.lstrip("/")
            await send_problem(send, 308, "Permanent Redirect", f"the playground is at {PATH}", {"Location": location})
            return
        found = self.files.get(path)
        if found is None:
            await send_problem(send, 404, "Not Found", f"{path[:256]!r} is not a file of the playground")
            return
        if scope["method"] not in ("GET", "HEAD"):
            await send_problem(send, 405, "Method Not Allowed", f"{PATH} answers GET", {"Allow": "GET, HEAD"})
            return
        fresh = found.etag in Headers(scope=scope).get("if-none-match", "")
        body = b"" if fresh or scope["method"] == "HEAD" else found.body
        headers = HEADERS | {"content-type": found.media_type, "etag": found.etag}
        if not fresh:
            headers["content-length"] = str(len(found.body))
        raw = [(name.encode(), value.encode()) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": 304 if fresh else 200, "headers": raw})
        await send({"type": "http.response.body", "body": body})
