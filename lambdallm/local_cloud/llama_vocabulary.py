"""A llama.cpp model's vocabulary (text to tokens and back) and its GGUF metadata, for the engine."""

from __future__ import annotations

import ctypes
import re
from typing import Any

import llama_cpp

from lambdallm.local_cloud.engines import Grammar, PromptTooLong


class GrammarRefused(ValueError):
    """llama.cpp could not parse a grammar."""


class Vocabulary:
    """The vocabulary of a loaded llama.cpp model (`model`, which it does not own) and the model's metadata."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.bos = llama_cpp.llama_vocab_bos(self._vocab)
        self.eos = llama_cpp.llama_vocab_eos(self._vocab)
        self.size = llama_cpp.llama_vocab_n_tokens(self._vocab)

    def is_end(self, token: int) -> bool:
        """Whether `token` ends a generation (EOS, end of turn ...)."""
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def tokenize(self, text: str, parse_special: bool) -> list[int]:
        """`text` as tokens (special tokens read as such when `parse_special`), with one BOS at most."""
        data = text.encode("utf-8")
        size = len(data) + 8
        buffer = (llama_cpp.llama_token * size)()
        count = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, size, True, parse_special)
        if count < 0:
            raise PromptTooLong(f"the prompt is more than {size} tokens")
        tokens = list(buffer[:count])
        if len(tokens) > 1 and tokens[0] == tokens[1] == self.bos:  # the template wrote one, the tokenizer another
            del tokens[0]
        return tokens

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of `token` (part of a UTF-8 character, maybe); its text too when `special`."""
        buffer = ctypes.create_string_buffer(64)
        size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, special)
        if size < 0:
            buffer = ctypes.create_string_buffer(-size)
            size = llama_cpp.llama_token_to_piece(self._vocab, token, buffer, len(buffer), 0, special)
        return buffer.raw[:size]

    def text(self, token: int) -> str:
        """A special token's text (BOS, EOS), or "" for a model without it."""
        return "" if token < 0 else self.piece(token, special=True).decode("utf-8", "replace")

    def grammar_sampler(self, grammar: Grammar) -> Any:
        """A llama.cpp sampler that allows only the tokens `grammar` allows next (lazy when it has triggers)."""
        gbnf = grammar.gbnf.encode()
        if grammar.triggers:
            patterns = [_pattern(trigger) for trigger in grammar.triggers]
            array = (ctypes.c_char_p * len(patterns))(*patterns)
            sampler = llama_cpp.llama_sampler_init_grammar_lazy_patterns(
                self._vocab, gbnf, b"root", array, len(patterns), None, 0
            )
        else:
            sampler = llama_cpp.llama_sampler_init_grammar(self._vocab, gbnf, b"root")
        if not sampler:
            raise GrammarRefused("llama.cpp could not parse the grammar")
        return sampler

    def metadata(self) -> dict[str, str]:
        """The model file's GGUF metadata, every value as text."""
        metadata: dict[str, str] = {}
        for index in range(llama_cpp.llama_model_meta_count(self._model)):
            fields = []
            for read in (llama_cpp.llama_model_meta_key_by_index, llama_cpp.llama_model_meta_val_str_by_index):
                size = read(self._model, index, None, 0)
                buffer = ctypes.create_string_buffer(size + 1)
                read(self._model, index, buffer, size + 1)
                fields.append(buffer.value.decode("utf-8", "replace"))
            metadata[fields[0]] = fields[1]
        return metadata


def _pattern(trigger: str) -> bytes:
    """A lazy grammar's trigger as llama.cpp's pattern: the text from the trigger on (its first group) is what the
    grammar then reads."""
    return ("[\\s\\S]*?(" + re.escape(trigger) + "[\\s\\S]*)").encode()
