"""A grammar's draw among the best tokens first is the draw over the whole vocabulary (lambdallm/local_cloud/
sampling.py): greedy and sampled, where the best tokens hold allowed ones and where they hold none, on Gemma's
vocabulary of 262,144 tokens and a JSON Schema's grammar."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from lambdallm.local_cloud import sampling
from lambdallm.local_cloud.engines import GenerationRequest
from lambdallm.local_cloud.grammar import json_grammar
from lambdallm.local_cloud.models import gemma_file
from lambdallm.local_cloud.sampling import (
    TOKEN_DATA,
    FewAllowed,
    Guide,
    allows,
    sampler_chain,
    token_array,
)

llama_cpp = pytest.importorskip("llama_cpp")

STORY = {"type": "object", "properties": {"story": {"type": "string", "minLength": 5}}, "required": ["story"]}


@pytest.fixture(scope="module")
def vocabulary() -> Iterator[Any]:
    from lambdallm.local_cloud.llama_vocabulary import Vocabulary

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True  # the tokens, not the weights
    model = llama_cpp.llama_model_load_from_file(str(gemma_file()).encode(), params)
    yield Vocabulary(model)
    llama_cpp.llama_model_free(model)


def whole_vocabulary_draw(grammar: Any, chain: Any, logits: Any) -> int:
    """The reference: the grammar applied to every token, then the highest allowed or the chain's draw."""
    candidates = np.empty(len(logits), dtype=TOKEN_DATA)
    candidates["id"], candidates["logit"], candidates["p"] = np.arange(len(logits)), logits, 0.0
    array = token_array(candidates)
    llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
    if chain is None:
        return int(candidates["id"][candidates["logit"].argmax()])
    llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
    return int(array.data[array.selected].id)


def assert_draws_as_the_whole_vocabulary(guide: Guide, reference: Any, request: GenerationRequest, logits: Any) -> None:
    """The guide's draw is the reference grammar's over the whole vocabulary, each with its own chain of the
    request's (the same seed: the same draw from the same set)."""
    chains = sampler_chain(request), sampler_chain(request)
    try:
        assert guide.draw(chains[0], logits) == whole_vocabulary_draw(reference, chains[1], logits)
    finally:
        for chain in chains:
            if chain is not None:
                llama_cpp.llama_sampler_free(chain)


def grammar_after(vocabulary: Any, text: str) -> Any:
    """The schema's grammar sampler, having accepted the tokens of `text`."""
    grammar = vocabulary.grammar_sampler(json_grammar(STORY))
    for token in vocabulary.tokenize(text, parse_special=False)[1:]:  # after the BOS the tokenizer adds
        assert allows(grammar, token), text
        llama_cpp.llama_sampler_accept(grammar, token)
    return grammar


# Inside the string most tokens are allowed (the best ones hold some); right after `{` only a quote or a space is
# (the best ones of random logits hold none, and the whole vocabulary decides).
@pytest.mark.parametrize("text", ['{"story": "Once upon', "{"])
@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_the_draw_among_the_best_tokens_is_the_whole_vocabulary_draw(
    vocabulary: Any, text: str, temperature: float
) -> None:
    guide = guide_after(vocabulary, text, FewAllowed(places=0))  # remembers nothing: every draw tries the best first
    grammar = grammar_after(vocabulary, text)
    rng = np.random.default_rng(7)
    request = GenerationRequest("", max_tokens=1, temperature=temperature, top_p=0.95, seed=11)
    try:
        for _ in range(20):
            logits = rng.normal(0.0, 3.0, vocabulary.size).astype(np.float32)
            assert_draws_as_the_whole_vocabulary(guide, grammar, request, logits)
    finally:
        guide.free()
        llama_cpp.llama_sampler_free(grammar)


def guide_after(vocabulary: Any, text: str, memory: FewAllowed) -> Guide:
    """A Guide for the schema, having accepted the tokens of `text`."""
    grammar = json_grammar(STORY)
    guide = Guide(grammar, vocabulary.grammar_sampler(grammar), memory)
    for token in vocabulary.tokenize(text, parse_special=False)[1:]:
        assert guide.allows(token), text
        guide.accept(token)
    return guide


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_a_place_that_allows_few_tokens_is_passed_over_once_and_draws_as_the_whole_vocabulary(
    vocabulary: Any, temperature: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = FewAllowed()
    passes: list[int] = []
    among = sampling._draw_among
    monkeypatch.setattr(
        sampling, "_draw_among", lambda g, c, lg, ids, n: passes.append(len(ids)) or among(g, c, lg, ids, n)
    )
    rng = np.random.default_rng(3)
    request = GenerationRequest("", max_tokens=1, temperature=temperature, top_p=0.95, seed=5)
    guides = [guide_after(vocabulary, "{", memory) for _ in range(2)]  # two requests at the same place
    reference = grammar_after(vocabulary, "{")
    try:
        for _ in range(10):
            logits = rng.normal(0.0, 3.0, vocabulary.size).astype(np.float32)
            for guide in guides:
                assert_draws_as_the_whole_vocabulary(guide, reference, request, logits)
    finally:
        for guide in guides:
            guide.free()
        llama_cpp.llama_sampler_free(reference)

    assert len(memory) == 1
    # The first draw tries the best tokens, then the whole vocabulary; every later one the few allowed alone.
    assert passes[1] == vocabulary.size
    assert all(n < 10 for n in passes[2:]) and len(passes) == 2 + 10 * len(guides) - 1  # after `{`: a quote, a space


def test_a_place_is_the_grammar_and_the_tokens_it_accepted(vocabulary: Any) -> None:
    memory = FewAllowed()
    logits = np.random.default_rng(1).normal(0.0, 3.0, vocabulary.size).astype(np.float32)
    guides = [guide_after(vocabulary, text, memory) for text in ("{", '{"story"', "{")]
    try:
        for guide in guides:
            guide.draw(None, logits)
    finally:
        for guide in guides:
            guide.free()

    assert len(memory) == 2  # after `{` (twice) and after `{"story"`


def test_a_string_takes_no_raw_control_character_only_its_escape(vocabulary: Any) -> None:
    """JSON allows no raw newline or tab in a string (a model that wrote one answered JSON that does not parse)."""
    grammar = grammar_after(vocabulary, '{"story": "Once upon')
    try:
        for raw in ("\n", "\t", "\r", "\n\n"):
            token = vocabulary.tokenize(raw, parse_special=False)[-1]
            assert not allows(grammar, token), repr(raw)
        escaped = vocabulary.tokenize("\\n", parse_special=False)[1]  # a backslash, or the pair as one token
        assert allows(grammar, escaped)
        assert allows(grammar, vocabulary.tokenize(" a time", parse_special=False)[1])
    finally:
        llama_cpp.llama_sampler_free(grammar)
