"""`bedrest` as a user runs it: passive mode, errors as one line, configuration precedence."""

import asyncio
import io
import threading
from urllib.parse import urlsplit

import pytest

from client_app.config import load_settings
from client_app.conversation import Conversation
from client_app.llm import make_client
from client_app.modes import PASSIVE_PROMPTS, run_active
from lambdallm.settings import SettingsError
from tests.fakes.backend import Reply, problem
from tests.fakes.stack import API_KEY


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


async def test_passive_prints_five_answers_in_order(bedrest, rest_url, fake):
    port = str(urlsplit(rest_url).port)
    done = await bedrest("passive", "--port", port, "--max-tokens", "7")
    assert done.returncode == 0, done.stderr
    positions = [done.stdout.index(f">>> {prompt}\necho: {prompt}\n") for prompt in PASSIVE_PROMPTS]
    assert positions == sorted(positions)
    assert done.stdout.count("output tokens") == 5
    assert [body for _, body in fake.requests] == [{"messages": [user(p)], "max_tokens": 7} for p in PASSIVE_PROMPTS]


async def test_raw_sends_the_prompts_as_they_are(bedrest, rest_url, fake):
    done = await bedrest("passive", "--port", str(urlsplit(rest_url).port), "--raw")
    assert done.returncode == 0, done.stderr
    raw = {"max_tokens": 100, "continuation": True}  # text to continue, as the request says
    assert [body for _, body in fake.requests] == [{"prompt": p} | raw for p in PASSIVE_PROMPTS]


async def test_port_from_environment(bedrest, rest_url):
    done = await bedrest("passive", BEDREST_PORT=str(urlsplit(rest_url).port))
    assert done.returncode == 0, done.stderr


async def test_server_error_is_one_line_and_nonzero(bedrest, rest_url, fake):
    fake.replies.append(problem(503, "model is down"))
    done = await bedrest("passive", "--port", str(urlsplit(rest_url).port))
    assert done.returncode == 1
    assert done.stderr.strip() == "bedrest: HTTP 503 Service Unavailable: model is down"


async def test_without_a_key_the_refusal_is_one_line_and_nonzero(bedrest, rest_url, fake):
    done = await bedrest("passive", "--port", str(urlsplit(rest_url).port), BEDREST_API_KEY=None)
    assert done.returncode == 1
    assert done.stderr.strip() == "bedrest: HTTP 401 Unauthorized: No authorization token provided"
    assert fake.requests == []


async def test_the_key_from_the_command_line_wins(bedrest, rest_url):
    port = str(urlsplit(rest_url).port)
    done = await bedrest("passive", "--port", port, "--api-key", API_KEY, BEDREST_API_KEY="wrong-key")
    assert done.returncode == 0, done.stderr
    wrong = await bedrest("passive", "--port", port, "--api-key", "wrong-key")
    assert wrong.stderr.strip() == "bedrest: HTTP 401 Unauthorized: the API key is not valid"


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
    with make_client(rest_url, 10, API_KEY) as client:
        status = await asyncio.to_thread(run_active, client, 5, lambda _prompt: next(lines), out, err)
    assert status == 0, err.getvalue()
    assert "echo: Hi" in out.getvalue() and "echo: Tell me a story" in out.getvalue()
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
    with make_client(rest_url, 10, API_KEY) as client:
        status = await asyncio.to_thread(run_active, client, 5, read_line, out, err)
    assert status == 1
    assert err.getvalue() == "bedrest: HTTP 429 Too Many Requests: busy\n"
    assert "echo: Hi again" in out.getvalue()


async def test_active_sends_every_earlier_turn_until_cleared(rest_url, fake):
    lines = iter(["My name is Ada.", "What is my name?", "clear", "And now?", "quit"])
    out, err = io.StringIO(), io.StringIO()
    with make_client(rest_url, 10, API_KEY) as client:
        status = await asyncio.to_thread(run_active, client, 5, lambda _prompt: next(lines), out, err)
    assert status == 0, err.getvalue()
    assert [body["messages"] for _, body in fake.requests] == [
        [user("My name is Ada.")],
        [user("My name is Ada."), assistant("echo: My name is Ada."), user("What is my name?")],
        [user("And now?")],
    ]
    assert "(conversation cleared)" in out.getvalue()


async def test_raw_active_sends_each_line_alone_as_text(rest_url, fake):
    lines = iter(["one", "two", "quit"])
    with make_client(rest_url, 10, API_KEY) as client:
        await asyncio.to_thread(run_active, client, 5, lambda _prompt: next(lines), io.StringIO(), io.StringIO(), False)
    assert [body for _, body in fake.requests] == [
        {"prompt": "one", "max_tokens": 5, "continuation": True},
        {"prompt": "two", "max_tokens": 5, "continuation": True},
    ]


def test_the_conversation_drops_whole_exchanges_from_the_oldest_to_fit():
    conversation = Conversation(budget_chars=20)
    conversation.remember("aaaa", "AAAA")
    conversation.remember("bbbb", "BBBB")
    assert conversation.with_line("cccc") == [
        ("user", "aaaa"),
        ("assistant", "AAAA"),
        ("user", "bbbb"),
        ("assistant", "BBBB"),
        ("user", "cccc"),
    ]
    assert conversation.with_line("c" * 10) == [("user", "bbbb"), ("assistant", "BBBB"), ("user", "c" * 10)]
    assert conversation.with_line("c" * 30) == [("user", "c" * 30)]
    conversation.remember("x", "  ")
    assert conversation.turns == []


async def test_a_full_context_drops_the_oldest_exchange_and_retries(rest_url, fake):
    fake.replies.append(
        problem(400, "the model rejected the request: the prompt is 600 tokens; the model's context is 512")
    )
    conversation = Conversation(budget_chars=1000, turns=[("user", "old"), ("assistant", "older answer")])
    from client_app.conversation import ask

    with make_client(rest_url, 10, API_KEY) as client:
        answer = await asyncio.to_thread(ask, client, conversation, "new", 5)
    assert answer.text == "echo: new"
    assert [body["messages"] for _, body in fake.requests] == [
        [user("old"), assistant("older answer"), user("new")],
        [user("new")],
    ]
    assert conversation.turns == [("user", "new"), ("assistant", "echo: new")]


class Watched(io.StringIO):
    """A terminal stand-in that tells when `text` has been written."""

    def __init__(self, text):
        super().__init__()
        self.text, self.seen = text, threading.Event()

    def write(self, s):
        written = super().write(s)
        if self.text in self.getvalue():
            self.seen.set()
        return written


async def test_an_answer_is_printed_as_it_is_made(rest_url, fake):
    gate = asyncio.Event()
    fake.replies.append(Reply(gates={2: gate}))  # everything after "echo: Hi" waits until the test opens the gate
    out = Watched("echo: Hi")
    lines = iter(["Hi", "quit"])

    def run():
        with make_client(rest_url, 30, API_KEY) as client:
            return run_active(client, 10, read_line=lambda _: next(lines), out=out, err=io.StringIO())

    running = asyncio.create_task(asyncio.to_thread(run))
    assert await asyncio.to_thread(out.seen.wait, 10), out.getvalue()
    gate.set()

    assert await running == 0
    assert "echo: Hi\n[1 input tokens, 2 output tokens, stop]" in out.getvalue()
    assert fake.requests[-1][0]["Accept"] == "application/x-ndjson"  # the proxy asked the backend for its stream


async def test_no_stream_waits_for_the_whole_answer(bedrest, rest_url, fake):
    done = await bedrest("passive", "--port", str(urlsplit(rest_url).port), "--no-stream")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("output tokens") == 5
    # Whole answers too reach the backend as streams, which the proxy collects (one path for both).
    assert sum(1 for headers, _ in fake.requests if headers.get("Accept") == "application/x-ndjson") == 5


async def test_an_error_after_the_first_text_keeps_the_text_and_is_one_line(bedrest, rest_url, fake):
    events = [{"type": "text", "text": "Once upon"}, {"type": "error", "status": 504, "detail": "too slow"}]
    fake.replies.append(Reply(events=events))
    done = await bedrest("passive", "--port", str(urlsplit(rest_url).port))
    assert done.returncode == 1
    assert done.stdout.endswith(">>> Hi\nOnce upon\n")
    assert done.stderr == "bedrest: HTTP 504 Gateway Timeout: too slow\n"


async def test_models_lists_the_served_models_the_default_first(bedrest, rest_url):
    done = await bedrest("models", "--port", str(urlsplit(rest_url).port))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "fake-model  fake       instruct  (default)",
        "fake-base   fake       base",
    ]


async def test_models_without_a_key_is_one_line_and_nonzero(bedrest, rest_url):
    done = await bedrest("models", "--port", str(urlsplit(rest_url).port), BEDREST_API_KEY=None)
    assert done.returncode == 1
    assert done.stderr.startswith("bedrest: HTTP 401 Unauthorized")


@pytest.mark.parametrize("where", ["flag", "config"])
async def test_the_model_from_the_flag_or_the_config_file_goes_with_every_request(
    bedrest, rest_url, fake, tmp_path, where
):
    port = str(urlsplit(rest_url).port)
    if where == "flag":
        done = await bedrest("passive", "--port", port, "--model", "fake-base", "--raw")
    else:
        config = tmp_path / "chosen.toml"
        config.write_text('model = "fake-base"\nchat = false\n')
        done = await bedrest("passive", "--port", port, BEDREST_CONFIG=str(config))
    assert done.returncode == 0, done.stderr
    assert {body["model"] for _, body in fake.requests} == {"fake-base"}
    assert len(fake.requests) == len(PASSIVE_PROMPTS)


async def test_a_chat_goes_to_the_chosen_model_and_an_unknown_one_is_one_line(rest_url, fake):
    lines = iter(["Hi", "quit"])
    err = io.StringIO()
    fake.replies.append(problem(404, "model: 'nope' is not served here (served: fake-model, fake-base)"))
    with make_client(rest_url, 10, API_KEY) as client:
        status = await asyncio.to_thread(
            run_active, client, 5, lambda _prompt: next(lines), io.StringIO(), err, True, 12000, True, "nope"
        )
    assert status == 1
    assert fake.requests[-1][1] == {"messages": [user("Hi")], "max_tokens": 5, "model": "nope"}
    assert "HTTP 404 Not Found: model: 'nope' is not served here (served: fake-model, fake-base)" in err.getvalue()
