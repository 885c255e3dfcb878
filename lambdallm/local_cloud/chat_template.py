"""Conversations to prompt text, through a model's own chat template (the Jinja template in its GGUF metadata)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# The instant echo model's template: plain lines, so its echo shows every turn that reached it.
ECHO_TEMPLATE = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}assistant:"

# Gemma 3's turn format (system text before the first user turn), as its instruction-tuned files carry it; the
# 270M base file has no template of its own, and its vocabulary has these turn tokens.
GEMMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}{% set prefix = messages[0]['content'] + '\n\n' %}"
    "{% set turns = messages[1:] %}{% else %}{% set prefix = '' %}{% set turns = messages %}{% endif %}"
    "{% for m in turns %}"
    "{{ '<start_of_turn>' + ('model' if m['role'] == 'assistant' else m['role']) + '\n' }}"
    "{{ (prefix if loop.first else '') + m['content'] | trim }}{{ '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
# Templates by model architecture (GGUF `general.architecture`), for files that carry none.
ARCHITECTURE_TEMPLATES = {"gemma3": GEMMA3_TEMPLATE}


class TemplateError(ValueError):
    """The template refused the conversation (its own `raise_exception`, e.g. roles out of order)."""


@dataclass(frozen=True)
class Turn:
    """One turn: `user` or `assistant`, and its text."""

    role: str
    content: str


@dataclass(frozen=True)
class Conversation:
    """What Converse carries to the model: an optional system text and the turns, oldest first."""

    system: str | None
    turns: tuple[Turn, ...]


class ChatTemplate:
    """A model's chat template, rendered the way llama-cpp-python's chat completion renders it."""

    def __init__(self, source: str, bos_token: str = "", eos_token: str = "") -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.source = source
        self._formatter = Jinja2ChatFormatter(source, eos_token=eos_token, bos_token=bos_token)

    @classmethod
    def of_model(cls, metadata: dict[str, str], bos_token: str, eos_token: str) -> ChatTemplate:
        """The template in a model file's GGUF metadata (else its architecture's), with its BOS and EOS text."""
        source = metadata.get("tokenizer.chat_template") or ARCHITECTURE_TEMPLATES.get(
            metadata.get("general.architecture", "")
        )
        if not source:
            raise ValueError("the model file has no chat template (tokenizer.chat_template)")
        return cls(source, bos_token=bos_token, eos_token=eos_token)

    def instruction(self, text: str) -> str:
        """`text` as one user turn, the prompt an instruct model answers (how a Titan inputText reaches it)."""
        return self.render(Conversation(None, (Turn("user", text),)))

    def render(self, conversation: Conversation) -> str:
        """The prompt for the model's next (assistant) turn; it holds the template's special tokens."""
        messages: list[Any] = [{"role": "system", "content": conversation.system}] if conversation.system else []
        messages += [{"role": turn.role, "content": turn.content} for turn in conversation.turns]
        try:
            return str(self._formatter(messages=messages).prompt)
        except Exception as exc:  # jinja2 errors and the template's raise_exception (ValueError)
            raise TemplateError(f"the model's chat template refused the conversation: {exc}") from exc
