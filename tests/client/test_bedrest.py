"""`bedrest` as a user runs it: passive mode, errors as one line, configuration precedence."""

import asyncio
import io
from urllib.parse import urlsplit

import pytest

from client_app.config import load_settings
from client_app.llm import make_client
from client_app.modes import PASSIVE_PROMPTS, run_active
from lambdallm.settings import SettingsError
from tests.fakes.backend import problem


async def test_passive_prints_five_answers_in_order(bedrest, rest_url, fake):
    port = str(urlsplit(rest_url).port)
    done = await bedrest("passive", "--port", port, "--max-tokens", "7")
    assert done.returncode == 0, done.stderr
    positions = [done.stdout.index(f">>> {prompt}\necho: User: {prompt}\nBot:\n") for prompt in PASSIVE_PROMPTS]
    assert positions == sorted(positions)
    assert done.stdout.count("output tokens") == 5
    assert [body["prompt"] for _, body in fake.requests] == [f"User: {p}\nBot:" for p in PASSIVE_PROMPTS]
    assert all(body["stop_sequences"] == ["User:"] for _, body in fake.requests)
    assert {body["max_tokens"] for _, body in fake.requests} == {7}


async def test_raw_sends_the_prompts_as_they_are(bedrest, rest_url, fake):
    done = await bedrest("passive", "--port", str(urlsplit(rest_url).port), "--raw")
    assert done.returncode == 0, done.stderr
    assert [body["prompt"] for _, body in fake.requests] == list(PASSIVE_PROMPTS)
    assert all("stop_sequences" not in body for _, body in fake.requests)


async def test_port_from_environment(bedrest, rest_url):
    done = await bedrest("passive", BEDREST_PORT=str(urlsplit(rest_url).port))
    assert done.returncode == 0, done.stderr


async def test_server_error_is_one_line_and_nonzero(bedrest, rest_url, fake):
    fake.replies.append(problem(503, "model is down"))
    done = await bedrest("passive", "--port", str(urlsplit(rest_url).port))
    assert done.returncode == 1
    assert done.stderr.strip() == "bedrest: HTTP 503 Service Unavailable: model is down"


async def test_connection_refused_is_one_line_and_nonzero(bedrest):
    done = await bedrest("passive", "--port", "1")
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert "cannot connect" in done.stderr
    assert "Traceback" not in done.stderr


async def test_bad_config_is_one_line(bedrest, tmp_path):
    (tmp_path / "bad.toml").write_text('port = "eighty"\n')
    done = await bedrest("passive", "--config", str(tmp_path / "bad.toml"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "port" in done.stderr


def test_config_precedence(tmp_path):
    path = tmp_path / "bedrest.toml"
    path.write_text('host = "10.0.0.1"\nport = 9000\nmax_tokens = 50\n')
    settings = load_settings(environ={"BEDREST_CONFIG": str(path), "BEDREST_PORT": "9001"}, max_tokens=20)
    assert (settings.host, settings.port, settings.max_tokens) == ("10.0.0.1", 9001, 20)
    with pytest.raises(SettingsError, match=r"none\.toml: no such config file"):
        load_settings(environ={"BEDREST_CONFIG": str(tmp_path / "none.toml")})


async def test_active_loop_until_quit(rest_url):
    lines = iter(["Hi", "", "Tell me a story", "quit", "never sent"])
    out, err = io.StringIO(), io.StringIO()
    with make_client(rest_url, 10) as client:
        status = await asyncio.to_thread(run_active, client, 5, lambda _prompt: next(lines), out, err)
    assert status == 0, err.getvalue()
    assert "echo: User: Hi" in out.getvalue() and "echo: User: Tell me a story" in out.getvalue()
    assert "never sent" not in out.getvalue()


async def test_active_reports_errors_and_continues_until_eof(rest_url, fake):
    fake.replies.append(problem(429, "busy"))
    lines = iter(["Hi", "Hi again"])

    def read_line(_prompt):
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    out, err = io.StringIO(), io.StringIO()
    with make_client(rest_url, 10) as client:
        status = await asyncio.to_thread(run_active, client, 5, read_line, out, err)
    assert status == 1
    assert err.getvalue() == "bedrest: HTTP 429 Too Many Requests: busy\n"
    assert "echo: User: Hi again" in out.getvalue()
