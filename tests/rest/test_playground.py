"""The playground's files over real HTTP: served without a key, with a strict Content-Security-Policy, nosniff and
revalidation; nothing else under /playground, and the API it calls still needs the key."""

import re

import httpx
import pytest

from lambdallm.rest.playground import STATIC
from tests.scrape import scrape_async

PAGE_FILES = [
    "/playground",
    "/playground/playground.js",
    "/playground/render.js",
    "/playground/sse.js",
    "/playground/playground.css",
    "/playground/favicon.svg",
]


@pytest.fixture
async def anonymous(rest):
    async with httpx.AsyncClient(base_url=rest, timeout=10) as client:
        yield client


@pytest.mark.parametrize("path", PAGE_FILES)
async def test_each_file_of_the_page_is_served_without_a_key_with_the_security_headers(anonymous, path):
    answer = await anonymous.get(path)

    assert answer.status_code == 200
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp and "http" not in csp  # no inline code, no other origin
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-cache"
    assert answer.headers["etag"]
    assert answer.headers["x-request-id"]


async def test_the_page_is_html_linking_only_its_own_files_and_the_scripts_are_javascript(anonymous):
    page = await anonymous.get("/playground")
    script = await anonymous.get("/playground/playground.js")

    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(link.startswith("playground/") for link in links), links
    assert "<script>" not in page.text and "style=" not in page.text  # nothing the CSP would refuse


def test_the_page_has_no_inline_handler_or_style_and_calls_only_its_own_origin():
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"\son[a-z]+=", text), path  # onclick= and friends are inline scripts
        urls = set(re.findall(r"\w+://[^\s\"'<>]+", text)) - {"http://www.w3.org/2000/svg"}  # the SVG's namespace
        assert urls == set(), path


async def test_an_unchanged_file_is_a_304_by_its_etag(anonymous):
    first = await anonymous.get("/playground/playground.css")
    again = await anonymous.get("/playground/playground.css", headers={"If-None-Match": first.headers["etag"]})

    assert again.status_code == 304 and again.content == b""
    assert again.headers["content-security-policy"] == first.headers["content-security-policy"]


async def test_head_answers_the_headers_without_the_body(anonymous):
    answer = await anonymous.head("/playground")

    assert answer.status_code == 200 and answer.content == b""
    assert int(answer.headers["content-length"]) == len((STATIC / "index.html").read_bytes())


async def test_a_path_that_is_not_a_file_of_the_page_is_a_404_problem(anonymous):
    for path in ("/playground/index.html", "/playground/../specs/openai.yaml", "/playground/nope.js"):
        answer = await anonymous.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"] == "application/problem+json"


async def test_the_folder_url_sends_the_browser_to_the_page_without_using_the_host(anonymous):
    answer = await anonymous.get("/playground/", headers={"Host": "evil.example"})

    assert answer.status_code == 308
    assert answer.headers["location"] == "../playground"  # /playground, or /<prefix>/playground behind a proxy


async def test_a_post_to_the_page_is_a_405(anonymous):
    answer = await anonymous.post("/playground", json={})

    assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD"


async def test_the_api_the_page_calls_still_needs_the_key(anonymous):
    answer = await anonymous.get("/v1/models")

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] is None  # no key sent: OpenAI's shape, code null


async def test_the_page_is_counted_under_one_route_label(anonymous):
    await anonymous.get("/playground")
    await anonymous.get("/playground/sse.js")

    scraped = await scrape_async(anonymous, "/metrics")
    routes = {dict(labels)["route"] for (name, labels) in scraped if name == "lambdallm_rest_requests_total"}
    assert "/playground" in routes and not any(route.startswith("/playground/") for route in routes)
