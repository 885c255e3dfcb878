"""BedREST's two modes: passive (five fixed prompts) and active (an interactive prompt loop)."""

from __future__ import annotations

import functools
import itertools
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

from client_app.conversation import Conversation, ask
from client_app.llm import ClientError, RestClient, conversation_request, generate, prompt_request, served_models
from generated.llm_client.models import GenerateResponse

PASSIVE_PROMPTS = ("Hi", "Who are you?", "Tell me a story", "What do you think of cloud computing", "I hate you")
QUIT = "quit"
CLEAR = "clear"


def format_answer(answer: GenerateResponse) -> str:
    """The generated text, then its token counts and why it ended."""
    return f"{answer.text.strip() or '(no text)'}\n{_counts(answer)}\n"


def _counts(answer: GenerateResponse) -> str:
    return f"[{answer.input_tokens} input tokens, {answer.output_tokens} output tokens, {answer.finish_reason}]"


def report(error: ClientError, err: TextIO) -> int:
    """Print a failure as one line on `err`; the exit status for it."""
    print(f"bedrest: {error}", file=err)
    return 1


@contextmanager
def spinner(out: TextIO, text: str = "generating") -> Iterator[Callable[[], None]]:
    """A spinner on `out` while the block runs, only when `out` is a terminal; the block may stop it early."""
    if not out.isatty():
        yield lambda: None
        return
    done = threading.Event()

    def spin() -> None:
        for frame in itertools.cycle("|/-\\"):
            out.write(f"\r{frame} {text}...")
            out.flush()
            if done.wait(0.1):
                break

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()

    def stop() -> None:
        if not done.is_set():
            done.set()
            thread.join()
            out.write("\r\033[K")
            out.flush()

    try:
        yield stop
    finally:
        stop()


Send = Callable[[Callable[[str], None] | None], GenerateResponse]


def answer(out: TextIO, send: Send, stream: bool) -> None:
    """Run `send` under a spinner and print its answer: streamed, the text as it arrives (the spinner only until
    the first piece) and then the counts; else all at once."""
    with spinner(out) as stop:
        if not stream:
            reply = send(None)
            stop()
            print(format_answer(reply), file=out, flush=True)
            return
        shown = False

        def show(piece: str) -> None:
            nonlocal shown
            piece = piece if shown else piece.lstrip()
            if piece:
                stop()
                out.write(piece)
                out.flush()
                shown = True

        try:
            reply = send(show)
        except ClientError:
            if shown:  # the error line goes below the text that came before it
                print(file=out, flush=True)
            raise
    print("" if shown else "(no text)", file=out)
    print(_counts(reply) + "\n", file=out, flush=True)


def run_passive(
    client: RestClient,
    max_tokens: int,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    chat: bool = True,
    stream: bool = True,
    model: str = "",
) -> int:
    """Send the five fixed prompts in order to `model` (empty: the default), each a one-turn conversation (plain
    text without `chat`), printing each answer under its prompt (as it is made, with `stream`); stop at the first
    error."""
    for prompt in PASSIVE_PROMPTS:
        print(f">>> {prompt}", file=out, flush=True)
        if chat:
            body = conversation_request([("user", prompt)], max_tokens, model)
        else:
            body = prompt_request(prompt, max_tokens, model)
        try:
            answer(out, functools.partial(generate, client, body), stream)
        except ClientError as exc:
            return report(exc, err)
    return 0


def run_active(
    client: RestClient,
    max_tokens: int,
    read_line: Callable[[str], str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    chat: bool = True,
    history_chars: int = 12000,
    stream: bool = True,
    model: str = "",
) -> int:
    """Prompt, generate, print, until `quit` or end of input; 1 if any generation failed, else 0. Every line goes
    to `model` (empty: the default).

    With `chat`, each line goes with the conversation before it (up to `history_chars`; `clear` forgets it);
    without, each line is plain text for the model to continue.
    """
    if read_line is None:
        read_line = PromptSession[str](history=_history()).prompt
    conversation = Conversation(history_chars)
    welcome = f"Welcome to BedREST. Type a prompt; `{CLEAR}` forgets the conversation, `{QUIT}` or Ctrl-D leaves."
    print(welcome if chat else f"Welcome to BedREST. Type a prompt; `{QUIT}` or Ctrl-D leaves.", file=out, flush=True)
    status = 0
    while True:
        try:
            line = read_line("you> ").strip()
        except EOFError:
            break
        except KeyboardInterrupt:
            continue
        if line == QUIT:
            break
        if not line:
            continue
        if chat and line == CLEAR:
            conversation.clear()
            print("(conversation cleared)", file=out, flush=True)
            continue

        def send(on_text: Callable[[str], None] | None, line: str = line) -> GenerateResponse:
            if chat:
                return ask(client, conversation, line, max_tokens, on_text, model)
            return generate(client, prompt_request(line, max_tokens, model), on_text)

        try:
            answer(out, send, stream)
        except ClientError as exc:
            status = report(exc, err)
    print("Bye.", file=out, flush=True)
    return status


def run_models(client: RestClient, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """Print the models the deployment serves, one a line (id, maker, instruct or base), the default marked."""
    try:
        models = served_models(client)
    except ClientError as exc:
        return report(exc, err)
    width = max((len(model.id) for model in models), default=0)
    for i, model in enumerate(models):
        kind = "instruct" if model.instruct else "base"
        print(f"{model.id:<{width}}  {model.owned_by:<10} {kind}{'  (default)' if i == 0 else ''}", file=out)
    return 0


def _history() -> History:
    """Prompts kept across sessions in ~/.local/share/bedrest/history, or for this session if that fails."""
    path = Path.home() / ".local" / "share" / "bedrest" / "history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))
