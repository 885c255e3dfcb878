"""BedREST's two modes: passive (five fixed prompts) and active (an interactive prompt loop)."""

from __future__ import annotations

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
from client_app.llm import ClientError, conversation_request, generate, prompt_request
from generated.llm_client import Client
from generated.llm_client.models import GenerateResponse

PASSIVE_PROMPTS = ("Hi", "Who are you?", "Tell me a story", "What do you think of cloud computing", "I hate you")
QUIT = "quit"
CLEAR = "clear"


def format_answer(answer: GenerateResponse) -> str:
    """The generated text, then its token counts and why it ended."""
    counts = f"[{answer.input_tokens} input tokens, {answer.output_tokens} output tokens, {answer.finish_reason}]"
    return f"{answer.text.strip() or '(no text)'}\n{counts}\n"


def report(error: ClientError, err: TextIO) -> int:
    """Print a failure as one line on `err`; the exit status for it."""
    print(f"bedrest: {error}", file=err)
    return 1


@contextmanager
def spinner(out: TextIO, text: str = "generating") -> Iterator[None]:
    """A spinner on `out` while the block runs, only when `out` is a terminal."""
    if not out.isatty():
        yield
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
    try:
        yield
    finally:
        done.set()
        thread.join()
        out.write("\r\033[K")
        out.flush()


def run_passive(
    client: Client, max_tokens: int, out: TextIO = sys.stdout, err: TextIO = sys.stderr, chat: bool = True
) -> int:
    """Send the five fixed prompts in order, each a one-turn conversation (plain text without `chat`), printing
    each answer under its prompt; stop at the first error."""
    for prompt in PASSIVE_PROMPTS:
        print(f">>> {prompt}", file=out, flush=True)
        body = conversation_request([("user", prompt)], max_tokens) if chat else prompt_request(prompt, max_tokens)
        try:
            with spinner(out):
                answer = generate(client, body)
        except ClientError as exc:
            return report(exc, err)
        print(format_answer(answer), file=out, flush=True)
    return 0


def run_active(
    client: Client,
    max_tokens: int,
    read_line: Callable[[str], str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    chat: bool = True,
    history_chars: int = 12000,
) -> int:
    """Prompt, generate, print, until `quit` or end of input; 1 if any generation failed, else 0.

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
        try:
            with spinner(out):
                answer = (
                    ask(client, conversation, line, max_tokens)
                    if chat
                    else generate(client, prompt_request(line, max_tokens))
                )
        except ClientError as exc:
            status = report(exc, err)
            continue
        print(format_answer(answer), file=out, flush=True)
    print("Bye.", file=out, flush=True)
    return status


def _history() -> History:
    """Prompts kept across sessions in ~/.local/share/bedrest/history, or for this session if that fails."""
    path = Path.home() / ".local" / "share" / "bedrest" / "history"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    except OSError:
        return InMemoryHistory()
    return FileHistory(str(path))
