"""Rendering conversations with a chat template, outside any engine."""

from __future__ import annotations

import pytest

from lambdallm.local_cloud.chat_template import GEMMA3_TEMPLATE, ChatTemplate, Conversation, TemplateError, Turn


def test_gemma3_puts_the_system_text_in_the_first_user_turn_and_asks_the_model() -> None:
    conversation = Conversation("Be brief.", (Turn("user", "Hi"), Turn("assistant", "Hello!"), Turn("user", "Bye")))
    assert ChatTemplate(GEMMA3_TEMPLATE, bos_token="<bos>").render(conversation) == (
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
    )


def test_a_template_that_refuses_the_conversation_is_a_template_error() -> None:
    template = ChatTemplate("{{ raise_exception('roles must alternate') }}")
    with pytest.raises(TemplateError, match="roles must alternate"):
        template.render(Conversation(None, (Turn("user", "Hi"),)))
