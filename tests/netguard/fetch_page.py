"""Fetch a served page and every asset it references, over loopback only; print JSON.

Run by tests/test_offline.py *inside* the server's network namespace (loopback is per namespace,
so the test process itself cannot reach a server started with ``unshare -n``). Standard library
only, on purpose: this is test tooling that must run with nothing but the interpreter, and it
never follows a URL that leaves the page's origin (those are reported, not fetched).

Followed: ``src``/``href`` of script, link, img, source, iframe in the HTML; ``url(...)`` and
``@import`` in CSS; ``import``/``from`` specifiers and Vite's preload lists in JS modules; plus
the ``extra`` paths given on the command line (routes the page's script requests at run time,
e.g. Gradio's ``/config`` and ``/theme.css``).

Usage: python fetch_page.py http://127.0.0.1:PORT/ [extra_path ...]
Output: {"origin": ..., "resources": [{"url", "status", "content_type", "size", "text"}],
"foreign": [{"url", "found_in"}], "errors": [...]}; ``text`` is kept for HTML, CSS and JSON.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser

MAX_RESOURCES = 3000
TEXT_TYPES = ("text/html", "text/css", "application/json")
CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)|@import\s+(['"])([^'"]+)\3""")
# Module references in Vite's output: ``import "./x.js"``, ``from"./x.js"``, ``import(`./x.js`)``
# and the preload list ``__vite__mapDeps`` (``m.f=["./x.js","./x.css",...]``). Other strings
# that merely look like paths (bundled CommonJS, docs) are not references and are not followed.
JS_IMPORT = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(?\s*)(["'`])(\.{1,2}/[^"'`\s$]+?)\1""")
JS_DEPS = re.compile(r"""m\.f\s*=\s*\[([^\]]*)\]""")
JS_DEP = re.compile(r"""(["'`])(\.{1,2}/[^"'`\s$]+?)\1""")


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in {"script", "link", "img", "source", "iframe", "video", "audio", "embed"}:
            return
        for name, value in attrs:
            if name in {"src", "href"} and value:
                self.refs.append(value)


def _kind(content_type: str, url: str) -> str:
    path = urllib.parse.urlsplit(url).path
    if "html" in content_type:
        return "html"
    if "css" in content_type or path.endswith(".css"):
        return "css"
    if "javascript" in content_type or path.endswith((".js", ".mjs")):
        return "js"
    if "json" in content_type:
        return "json"
    return "other"


def crawl(start: str, extra: list[str]) -> dict[str, object]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via a proxy
    origin = "{0.scheme}://{0.netloc}".format(urllib.parse.urlsplit(start))
    queue = [start] + [urllib.parse.urljoin(start, path) for path in extra]
    seen: set[str] = set()
    resources: list[dict[str, object]] = []
    foreign: list[dict[str, str]] = []
    errors: list[str] = []

    def enqueue(ref: str, base: str) -> None:
        ref = ref.strip()
        if not ref or ref.startswith(("data:", "blob:", "#", "javascript:", "about:")):
            return
        url = urllib.parse.urljoin(base, ref).split("#")[0]
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            return
        if f"{parts.scheme}://{parts.netloc}" != origin:
            foreign.append({"url": url, "found_in": base})
            return
        queue.append(url)

    while queue and len(resources) < MAX_RESOURCES:
        url = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        try:
            with opener.open(url, timeout=30) as response:
                status = response.status
                content_type = response.headers.get("content-type", "")
                body = response.read()
        except urllib.error.HTTPError as err:
            status, content_type, body = err.code, err.headers.get("content-type", ""), b""
        except OSError as err:
            errors.append(f"{url}: {err}")
            continue
        kind = _kind(content_type, url)
        text = body.decode("utf-8", errors="replace") if kind != "other" else ""
        keep = kind in ("html", "css") or any(t in content_type for t in TEXT_TYPES)
        resources.append(
            {
                "url": url,
                "status": status,
                "content_type": content_type,
                "size": len(body),
                "text": text if keep else None,
            }
        )
        if kind == "html":
            parser = _Refs()
            parser.feed(text)
            for ref in parser.refs:
                enqueue(ref, url)
        elif kind == "css":
            for match in CSS_URL.finditer(text):
                enqueue(match.group(2) or match.group(4), url)
        elif kind == "js":
            for match in JS_IMPORT.finditer(text):
                enqueue(match.group(2), url)
            for deps in JS_DEPS.finditer(text):
                for match in JS_DEP.finditer(deps.group(1)):
                    enqueue(match.group(2), url)
    if queue:
        errors.append(f"more than {MAX_RESOURCES} resources: crawl stopped")
    return {"origin": origin, "resources": resources, "foreign": foreign, "errors": errors}


if __name__ == "__main__":
    json.dump(crawl(sys.argv[1], sys.argv[2:]), sys.stdout, ensure_ascii=False)
