"""The playground in a real browser (headless chromium) against the whole chain on the real model: the page loads
without a key under its CSP, streams an answer over several frames, stops one mid-stream (the model's slot frees),
shows a clear error for a bad key, shows tool calls and JSON answers, and fits a phone. Screenshots of each test are
left in build/test-artifacts/playground/."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lambdallm.stack import Stack
from tests.browser import ensure_chromium, headless_chromium, screenshot
from tests.scrape import Samples, scrape

pytestmark = [pytest.mark.e2e, pytest.mark.model]
BUSY, QUEUED = "lambdallm_bedrock_busy_slots", "lambdallm_bedrock_queue_depth"
STEPS = "lambdallm_bedrock_decode_steps_total"
IDLE_WITHIN_S = 20  # the model frees the slot within a few tokens of Stop; generous for a loaded machine
STEPS_AFTER_STOP = 40
GEMMA = "google.gemma-3-270m"
# Each frame the browser paints: the last answer's text length, and whether the conversation is still busy.
RECORD_FRAMES = """
window.frames_seen = [];
const answers = document.querySelectorAll.bind(document, '#conversation .assistant .text');
(function frame() {
  const all = answers();
  const busy = document.getElementById('conversation').getAttribute('aria-busy') === 'true';
  window.frames_seen.push([busy, all.length ? all[all.length - 1].textContent.length : 0]);
  requestAnimationFrame(frame);
})();
"""


@pytest.fixture(scope="session")
def browser_binary() -> str:
    return ensure_chromium()


@pytest.fixture
def browser(browser_binary: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh headless chromium; a screenshot of its last page is saved as the test's artifact."""
    with headless_chromium(browser_binary, tmp_path / "profile") as driver:
        yield driver
        screenshot(driver, request.node.name)


def wait(driver: Any, condition: Any, timeout: float = 60) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def console_errors(driver: Any, allowed: tuple[str, ...] = ()) -> list[str]:
    """The browser console's errors (CSP violations, script errors, failed loads), but those naming `allowed`."""
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not any(text in entry["message"] for text in allowed)
    ]


def element(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def open_with_key(driver: Any, chain: Stack, key: str | None = None) -> None:
    """Load the page and use `key` (the chain's own by default); with a valid key, wait until the models are in."""
    driver.get(f"{chain.rest_url}/playground")
    element(driver, "#api-key").send_keys(key or chain.api_key)
    element(driver, "#use-key").click()
    if key is None:
        wait(driver, lambda d: element(d, "#model").is_enabled())


def choose(driver: Any, css: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(element(driver, css)).select_by_value(value)


def ask(driver: Any, message: str, max_tokens: int, temperature: float = 0) -> None:
    for css, value in (("#max-tokens", max_tokens), ("#temperature", temperature), ("#message", message)):
        element(driver, css).clear()
        element(driver, css).send_keys(str(value))
    element(driver, "#send").click()


def answered(driver: Any) -> dict[str, str]:
    """Wait until the last answer shows its figures; they, by name (`tokens`, `first token`, `speed`...)."""
    wait(driver, lambda d: d.find_elements("css selector", "#conversation .assistant:last-child .stats"))
    figures = driver.find_elements("css selector", "#conversation .assistant:last-child .stats dd")
    return {figure.get_attribute("data-stat"): figure.text for figure in figures}


def last_answer(driver: Any) -> str:
    return str(element(driver, "#conversation .assistant:last-child .text").text)


def total(scraped: Samples, name: str) -> float:
    """The sum of a metric's series (every model's; for STEPS, generation steps only)."""
    return sum(
        value
        for (sample, labels), value in scraped.items()
        if sample == name and dict(labels).get("kind", "generate") == "generate"
    )


def test_the_page_loads_without_a_key_under_its_csp_with_every_control_labelled(model_chain: Stack, browser: Any):
    page = httpx.get(f"{model_chain.rest_url}/playground", timeout=10)
    browser.get(f"{model_chain.rest_url}/playground/")  # sent on to /playground, where its relative links work

    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert browser.title == "λλM playground" and browser.current_url == f"{model_chain.rest_url}/playground"
    unlabelled = browser.execute_script(
        "return [...document.querySelectorAll('input, select, textarea')]"
        ".filter(c => !c.labels || !c.labels.length).map(c => c.id)"
    )
    assert unlabelled == []
    assert element(browser, "#conversation").get_attribute("aria-live") == "polite"
    assert console_errors(browser) == []


def test_an_answer_streams_in_over_several_frames_with_its_figures(model_chain: Stack, browser: Any):
    open_with_key(browser, model_chain)
    browser.execute_script(RECORD_FRAMES)

    ask(browser, "Tell me a story about a cat.", max_tokens=40)
    figures = answered(browser)

    lengths = {length for busy, length in browser.execute_script("return window.frames_seen") if busy and length}
    assert len(lengths) >= 2, f"the answer appeared whole: {lengths}"
    assert last_answer(browser)
    prompt, completion = (int(n.split()[0]) for n in figures["tokens"].split(", "))
    assert prompt > 0 and 0 < completion <= 40
    assert figures["first token"].endswith(" ms") and figures["speed"].endswith(" tokens/s")
    assert element(browser, "#conversation").get_attribute("aria-busy") == "false"
    assert console_errors(browser) == []
    screenshot(browser, "answered")
    urls = browser.execute_script("return [location.href, ...performance.getEntries().map(entry => entry.name)]")
    assert any("/v1/chat/completions" in url for url in urls) and not any(model_chain.api_key in u for u in urls)
    browser.refresh()
    wait(browser, lambda d: element(d, "#model").is_enabled())  # the tab keeps the key: the models load again


def test_stop_ends_a_long_answer_mid_stream_and_frees_the_models_slot(model_chain: Stack, browser: Any):
    metrics = model_chain.metrics_urls["local-cloud"]
    open_with_key(browser, model_chain)

    ask(browser, "Count from 1 to 1000, separated by commas.", max_tokens=3000)
    wait(browser, lambda d: len(last_answer(d)) > 20)
    assert total(scrape(metrics), BUSY) >= 1  # the model is generating it
    element(browser, "#stop").click()
    wait(browser, lambda d: d.find_elements("css selector", "#conversation .assistant .stopped"), timeout=10)
    shown, stopped, stopped_at = last_answer(browser), scrape(metrics), time.monotonic()

    while (total(now := scrape(metrics), BUSY) or total(now, QUEUED)) and time.monotonic() - stopped_at < IDLE_WITHIN_S:
        time.sleep(0.05)
    assert total(now, BUSY) == total(now, QUEUED) == 0, f"the model was still generating {IDLE_WITHIN_S} s after Stop"
    # Run to its end, the answer would take thousands of steps more; stopped, a few while the hang-up crosses the tiers.
    assert total(now, STEPS) - total(stopped, STEPS) <= STEPS_AFTER_STOP
    assert last_answer(browser) == shown  # nothing more arrived after Stop
    assert element(browser, "#send").is_enabled() and not element(browser, "#stop").is_enabled()

    ask(browser, "Say hi.", max_tokens=8)  # the conversation goes on, the stopped answer in it
    assert int(answered(browser)["tokens"].split(", ")[1].split()[0]) > 0
    assert console_errors(browser) == []


def test_a_missing_or_bad_key_is_a_clear_error(model_chain: Stack, browser: Any):
    browser.get(f"{model_chain.rest_url}/playground")
    ask(browser, "Hi", max_tokens=4)
    error = wait(browser, lambda d: element(d, "#error").is_displayed() and element(d, "#error"))
    assert error.text == "This server needs an API key (401 Unauthorized): enter it above."
    assert element(browser, "#message").get_attribute("value") == "Hi"  # put back, to send again

    open_with_key(browser, model_chain, key="not-the-key")

    error = wait(browser, lambda d: element(d, "#error").is_displayed() and element(d, "#error"))
    assert "API key was refused (401" in error.text and "not valid" in error.text
    assert not element(browser, "#model").is_enabled()
    assert console_errors(browser, allowed=("401",)) == []


def test_tool_calls_show_as_they_arrive_and_json_mode_answers_json(model_chain: Stack, browser: Any):
    open_with_key(browser, model_chain)
    choose(browser, "#model", GEMMA)
    choose(browser, "#mode", "tools")
    choose(browser, "#tool-choice", "required")

    ask(browser, "What is the weather in Paris?", max_tokens=40)
    answered(browser)

    call = element(browser, "#conversation .assistant:last-child .call pre").text
    assert call.startswith("get_weather(") and isinstance(json.loads(call[len("get_weather(") : -1]), dict)
    assert element(browser, "#message-label").text == "Result of the tool call get_weather"
    screenshot(browser, "tool-call")
    choose(browser, "#tool-choice", "none")
    ask(browser, "Sunny, 21 degrees", max_tokens=20)  # the call's result, sent as a tool message
    answered(browser)
    roles = [role.text for role in browser.find_elements("css selector", "#conversation .role")]
    assert roles == ["USER", "ASSISTANT", "TOOL", "ASSISTANT"]
    assert last_answer(browser)
    element(browser, "#clear").click()

    choose(browser, "#mode", "json_schema")
    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}}, "required": ["answer"]}
    element(browser, "#schema").clear()
    element(browser, "#schema").send_keys(json.dumps(schema))
    ask(browser, "Is Paris in France?", max_tokens=20)
    answered(browser)

    assert json.loads(last_answer(browser))["answer"] in ("yes", "no")
    assert console_errors(browser) == []


def test_the_page_fits_a_phone_and_is_usable_by_keyboard(model_chain: Stack, browser: Any):
    from selenium.webdriver.common.keys import Keys

    browser.set_window_size(375, 812)
    browser.get(f"{model_chain.rest_url}/playground")
    element(browser, "#api-key").send_keys(model_chain.api_key, Keys.ENTER)
    wait(browser, lambda d: element(d, "#model").is_enabled())
    wide = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")

    element(browser, "#max-tokens").send_keys(Keys.CONTROL, "a", Keys.NULL, "16")
    element(browser, "#message").send_keys("Hi!", Keys.CONTROL, Keys.ENTER)
    answered(browser)

    assert wide <= 0, f"the page is {wide} px wider than a phone's screen"
    assert last_answer(browser)
    assert console_errors(browser) == []
    screenshot(browser, "phone")


# Chunks of a response body as fetch may cut them, and the events' data that the SSE standard makes of them.
SSE_CASES = [
    (["data: a\n\n"], ["a"]),
    (["data: one\ndata: two\n\n"], ["one\ntwo"]),
    (["data: x\r\n\r\n", "data: y\r\r"], ["x", "y"]),
    (["data: x\r", "\n\r", "\n"], ["x"]),
    (["da", 'ta: {"a"', ":1}\n", "\n"], ['{"a":1}']),
    ([": a comment\n", "event: chunk\ndata:no space\n\n"], ["no space"]),
    (["data:  two spaces\n\n"], [" two spaces"]),
    (["data\n\n", "id: 7\n\n"], [""]),
    (["data: cut off by the end\n"], []),
]


def test_the_pages_event_parser_reads_server_sent_events_as_the_standard_says(model_chain: Stack, browser: Any):
    browser.get(f"{model_chain.rest_url}/playground")

    seen = browser.execute_async_script(
        "const [cases, done] = arguments;"
        "import('/playground/sse.js').then(({EventParser}) => done(cases.map(chunks => {"
        "  const events = []; const parser = new EventParser(data => events.push(data));"
        "  chunks.forEach(chunk => parser.push(chunk)); return events;"
        "}))).catch(error => done(String(error)));",
        [chunks for chunks, _ in SSE_CASES],
    )

    assert seen == [events for _, events in SSE_CASES]
    assert console_errors(browser) == []


def test_the_page_reads_each_entry_of_a_server_timing_header(model_chain: Stack, browser: Any):
    browser.get(f"{model_chain.rest_url}/playground")
    header = 'rest;dur=1.25, proxy;desc="gRPC proxy, then backend";dur=12, miss, model;dur="3"'

    entries = browser.execute_async_script(
        "const [header, done] = arguments;"
        "import('/playground/render.js').then(m => done([m.serverTiming(header), m.serverTiming(null)]))"
        ".catch(error => done(String(error)));",
        header,
    )

    assert entries == [["rest 1.3 ms", "gRPC proxy, then backend 12.0 ms", "miss", "model 3.0 ms"], []]
