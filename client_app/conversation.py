"""`bedrest active`'s memory: the conversation so far, trimmed from the oldest exchange so that it fits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from client_app.llm import ContextFull, RestClient, conversation_request, generate
from generated.llm_client.models import GenerateResponse


@dataclass
class Conversation:
    """`(role, text)` turns, oldest first, kept within `budget_chars` by dropping whole exchanges from the front."""

    budget_chars: int
    turns: list[tuple[str, str]] = field(default_factory=list)

    def with_line(self, line: str) -> list[tuple[str, str]]:
        """The turns to send for a new user line: the history that fits the budget with it, then the line."""
        while self.turns and sum(len(text) for _, text in self.turns) + len(line) > self.budget_chars:
            self.drop_oldest()
        return [*self.turns, ("user", line)]

    def drop_oldest(self) -> bool:
        """Forget the oldest exchange (a user turn and its answer); False when there is none left."""
        if not self.turns:
            return False
        del self.turns[:2]
        return True

    def remember(self, line: str, answer: str) -> None:
        """Keep an exchange; one without an answer is dropped whole, so that the turns still alternate."""
        if answer.strip():
            self.turns += [("user", line), ("assistant", answer.strip())]

    def clear(self) -> None:
        """Start over."""
        self.turns.clear()


def ask(
    client: RestClient,
    conversation: Conversation,
    line: str,
    max_tokens: int,
    on_text: Callable[[str], None] | None = None,
    model: str = "",
) -> GenerateResponse:
    """Send `line` with the turns before it (streamed to `on_text` if given); when the model's context is full,
    drop the oldest and try again."""
    while True:
        try:
            request = conversation_request(conversation.with_line(line), max_tokens, model)
            answer = generate(client, request, on_text)
        except ContextFull:
            if not conversation.drop_oldest():
                raise
            continue
        conversation.remember(line, answer.text)
        return answer
