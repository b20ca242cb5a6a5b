"""HTML pages: Jinja2 templates with autoescaping, sent with the headers every page needs."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse, Response

from authserver.files import data_dir

STYLESHEET_PATH = "/oauth2/assets/authserver.css"

# No script at all, styles only from our own stylesheet, never framed, no referrer leaking the
# query (which carries state and client ids) to the app's website.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


class Pages:
    def __init__(self, https: bool, site_name: str = "Phraseanet") -> None:
        self._headers = dict(SECURITY_HEADERS)
        if https:
            self._headers["Strict-Transport-Security"] = "max-age=31536000"
        self._env = Environment(
            loader=FileSystemLoader(data_dir("templates")),
            autoescape=select_autoescape(default=True, default_for_string=True),
            undefined=StrictUndefined,
        )
        self._env.globals.update(site_name=site_name, stylesheet=STYLESHEET_PATH)
        self.stylesheet = (data_dir("templates") / "authserver.css").read_bytes()

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self._env.get_template(template).render(**context)
        return HTMLResponse(html, status_code=status, headers=self._headers)

    def error(self, status: int, heading: str, message: str) -> HTMLResponse:
        return self.render("error.html", status, heading=heading, message=message)

    def stylesheet_response(self) -> Response:
        return Response(
            self.stylesheet,
            media_type="text/css",
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )
