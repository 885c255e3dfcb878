"""Continuous batching over llama.cpp: every active request advances in one `llama_decode` per step.

One context holds `slots` KV-cache sequences, one per request. Each step decodes a batch of the last sampled
token of every generating request plus a chunk of the prompts of requests that have just joined; then each
request samples its next token with its own sampler chain. Requests join and leave between steps.
"""

from __future__ import annotations

import codecs
import collections
import heapq
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

from lambdallm.local_cloud.chat_template import ChatTemplate
from lambdallm.local_cloud.decode_thread import decode_thread
from lambdallm.local_cloud.engines import (
    Cancelled,
    Completion,
    DecodeSteps,
    Emit,
    GenerationRequest,
    Grammar,
    PromptTooLong,
    TextStream,
)
from lambdallm.local_cloud.llama_vocabulary import Vocabulary
from lambdallm.local_cloud.sampling import FewAllowed, Guide, sampler_chain

logger = logging.getLogger("lambdallm.local_cloud.engine")
# llama.cpp's own notices (model loading, context sizes) go to stderr through this logger's level test.
logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)


@dataclass(eq=False)
class _Job:
    request: GenerationRequest
    emit: Emit | None
    cancelled: threading.Event
    future: Future[Completion]


@dataclass(eq=False)
class _Sequence:
    """A request in its slot: the prompt still to feed, the token to decode next, and its text so far."""

    job: _Job
    slot: int
    prompt: list[int]
    text: TextStream
    sampler: Any  # llama.cpp's sampler chain; None for greedy decoding (the engine takes the argmax itself)
    grammar: Guide | None  # the request's grammar, if it has one
    fed: int = 0  # prompt tokens in the KV cache
    next_token: int | None = None  # sampled, to be decoded in the next step
    row: int = -1  # the batch row whose logits this sequence samples after the step
    decoder: codecs.IncrementalDecoder = field(default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace"))

    @property
    def next_position(self) -> int:
        """Where `next_token` goes: after the prompt and the tokens generated before it."""
        return self.fed + self.text.count - 1


class LlamaEngine:
    """A GGUF model served to up to `slots` requests at once, on one worker thread (see the module docstring)."""

    def __init__(self, model_path: Path, threads: int, context_tokens: int, slots: int, chunk_tokens: int) -> None:
        llama_cpp.llama_backend_init()
        self.slots, self.chunk_tokens = slots, chunk_tokens
        model_params = llama_cpp.llama_model_default_params()
        # No weight repacking: repacked kernels round a row differently by its place in the batch (groups of four
        # rows take one kernel, the rest another), so greedy text would depend on who else is generating.
        # It costs little here (measured: under 5% of 8-client throughput; 13 of 235 MB of weights repack).
        model_params.use_extra_bufts = False
        self._model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), model_params)
        if not self._model:
            raise RuntimeError(f"llama.cpp could not load {model_path}")
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = context_tokens * slots  # split evenly between the sequences (the KV cache is not unified)
        params.n_seq_max = slots
        params.n_batch = params.n_ubatch = chunk_tokens + slots
        params.n_threads = params.n_threads_batch = threads
        params.no_perf = True
        params.swa_full = False  # sliding-window layers keep their window, not the whole context (as llama-server)
        self._ctx = llama_cpp.llama_init_from_model(self._model, params)
        if not self._ctx:
            llama_cpp.llama_model_free(self._model)
            raise RuntimeError(f"llama.cpp could not create a context of {params.n_ctx} tokens")
        self.context_tokens = llama_cpp.llama_n_ctx_seq(self._ctx)
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self.vocabulary = Vocabulary(self._model)
        self.instruct = True  # the served models take instructions in their chat format (SmolLM2-135M-Instruct)
        self.grammars = True
        vocabulary = self.vocabulary
        self.chat_template = ChatTemplate.of_model(
            vocabulary.metadata(), vocabulary.text(vocabulary.bos), vocabulary.text(vocabulary.eos)
        )
        self._batch = llama_cpp.llama_batch_init(params.n_batch, 0, 1)
        self._waiting: collections.deque[_Job] = collections.deque()
        self._active: dict[int, _Sequence] = {}  # by slot, in order of arrival
        self._free = list(range(slots))  # a heap: the lowest free slot first, so active slots stay together
        self._wakeup = threading.Condition()
        self.steps = DecodeSteps()
        self._few_allowed = FewAllowed()  # what grammars allow where they allow few tokens, for every request
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="model", daemon=True)
        self._thread.start()

    def submit(self, request: GenerationRequest, emit: Emit | None, cancelled: threading.Event) -> Future[Completion]:
        """Queue `request` for the next free slot; its future fails with `PromptTooLong` or `Cancelled`."""
        job = _Job(request, emit, cancelled, Future())
        with self._wakeup:
            if self._closed:
                raise RuntimeError("the engine is closed")
            self._waiting.append(job)
            self._wakeup.notify()
        return job.future

    def close(self) -> None:
        """Stop after the current step, fail what is left with `Cancelled`, and free the model."""
        with self._wakeup:
            self._closed = True
            self._wakeup.notify()
        self._thread.join()
        llama_cpp.llama_batch_free(self._batch)
        llama_cpp.llama_free(self._ctx)
        llama_cpp.llama_model_free(self._model)

    def _run(self) -> None:
        while True:
            with self._wakeup:
                self._wakeup.wait_for(lambda: self._closed or self._active or self._waiting)
                if self._closed:
                    break
                joining = [self._waiting.popleft() for _ in range(min(len(self._free), len(self._waiting)))]
            for job in joining:
                self._join(job)
            for sequence in [s for s in self._active.values() if s.job.cancelled.is_set()]:
                self._end(sequence, Cancelled())
            if not self._active:
                continue
            try:
                self._step()
            except Exception as exc:  # never let one bad step end the thread: fail what it held instead
                logger.exception("decode step failed")
                for sequence in list(self._active.values()):
                    self._end(sequence, exc)
        for sequence in list(self._active.values()):
            self._end(sequence, Cancelled())
        for job in self._waiting:
            if job.future.set_running_or_notify_cancel():
                job.future.set_exception(Cancelled())

    def _join(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return  # cancelled while it waited
        try:
            prompt = self.vocabulary.tokenize(job.request.prompt, job.request.parse_special)
            room = self.context_tokens - len(prompt)
            if room <= 0:
                raise PromptTooLong(f"the prompt is {len(prompt)} tokens; the model's context is {self.context_tokens}")
        except Exception as exc:
            job.future.set_exception(exc)
            return
        slot = heapq.heappop(self._free)
        limit = min(job.request.max_tokens, room)
        self._active[slot] = _Sequence(
            job,
            slot,
            prompt,
            TextStream(job.request, limit, job.emit),
            sampler_chain(job.request),
            self._guide(job.request.grammar) if job.request.grammar else None,
        )

    def _guide(self, grammar: Grammar) -> Guide:
        return Guide(grammar, self.vocabulary.grammar_sampler(grammar), self._few_allowed)

    def _step(self) -> None:
        """One decode over every active sequence: a token each for those generating, prompt chunks for the rest."""
        budget, chunks = self.chunk_tokens, dict[int, int]()  # slot -> prompt tokens it feeds in this step
        for sequence in self._active.values():  # in order of arrival: who gets this step's prompt room
            # Whole chunks only: a prompt splits at the same places whoever else is decoding, so its numbers do too.
            take = min(self.chunk_tokens, len(sequence.prompt) - sequence.fed)
            if sequence.next_token is None and 0 < take <= budget:
                chunks[sequence.slot] = take
                budget -= take
        # The batch lists sequences by slot, each one's rows together. With a KV stream per sequence, llama.cpp
        # decodes a batch in runs of consecutive sequence ids, one pass over the weights per run: 8 sequences
        # in arrival order after slots had been reused took 73 ms a step here, against 43 ms in slot order.
        rows = 0
        for sequence in sorted(self._active.values(), key=lambda s: s.slot):
            sequence.row = -1
            if sequence.next_token is not None:
                rows = self._add(rows, sequence.next_token, sequence.next_position, sequence.slot, True)
                sequence.row = rows - 1
            elif take := chunks.get(sequence.slot, 0):
                last = len(sequence.prompt) - 1
                for position in range(sequence.fed, sequence.fed + take):
                    rows = self._add(rows, sequence.prompt[position], position, sequence.slot, position == last)
                sequence.fed += take
                sequence.row = rows - 1 if sequence.fed == len(sequence.prompt) else -1
        self._batch.n_tokens = rows
        started = time.perf_counter()
        status = decode_thread().run(lambda: llama_cpp.llama_decode(self._ctx, self._batch))  # one OpenMP team
        self.steps.record(prompt=bool(chunks), seconds=time.perf_counter() - started)
        if status != 0:
            for sequence in list(self._active.values()):
                self._end(sequence, RuntimeError(f"llama_decode failed with status {status}"))
            return
        for sequence in [s for s in self._active.values() if s.row >= 0]:
            try:
                self._advance(sequence)
            except Exception as exc:  # an emit that fails (its event loop gone) ends only its own request
                self._end(sequence, exc)

    def _add(self, row: int, token: int, position: int, slot: int, logits: bool) -> int:
        batch = self._batch
        batch.token[row], batch.pos[row], batch.n_seq_id[row] = token, position, 1
        batch.seq_id[row][0], batch.logits[row] = slot, logits
        return row + 1

    def _advance(self, sequence: _Sequence) -> None:
        token = self._sample(sequence)
        if self.vocabulary.is_end(token):
            self._end(sequence)
        elif sequence.text.push(sequence.decoder.decode(self.vocabulary.piece(token))):
            sequence.next_token = token
        else:
            self._end(sequence)

    def _sample(self, sequence: _Sequence) -> int:
        """The next token. With a grammar, as llama.cpp's common sampler does: the token drawn freely if the
        grammar allows it, else one drawn again among the tokens it allows (a grammar costs a pass over the
        whole vocabulary only when the model strays from it)."""
        token = self._draw(sequence)
        if sequence.grammar is None:
            return token
        if not sequence.grammar.allows(token):
            token = sequence.grammar.draw(sequence.sampler, self._logits(sequence))
        sequence.grammar.accept(token)
        return token

    def _logits(self, sequence: _Sequence) -> Any:
        return np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(self._ctx, sequence.row), shape=(self.vocabulary.size,)
        )

    def _draw(self, sequence: _Sequence) -> int:
        if sequence.sampler is not None:
            return int(llama_cpp.llama_sampler_sample(sequence.sampler, self._ctx, sequence.row))
        # Greedy: the first highest logit, as llama.cpp's greedy sampler picks it, without first copying the
        # whole vocabulary into a candidates array (measured: 3-4 ms of a 40 ms step of 8 sequences).
        return int(self._logits(sequence).argmax())

    def _end(self, sequence: _Sequence, error: Exception | None = None) -> None:
        """Free the sequence's slot (its KV cache and sampler), then resolve its future."""
        del self._active[sequence.slot]
        llama_cpp.llama_memory_seq_rm(self._memory, sequence.slot, -1, -1)
        if sequence.sampler is not None:
            llama_cpp.llama_sampler_free(sequence.sampler)
        if sequence.grammar is not None:
            sequence.grammar.free()
        heapq.heappush(self._free, sequence.slot)
        if error is not None:
            sequence.job.future.set_exception(error)
            return
        try:
            text, count, reason = sequence.text.result()
        except Exception as exc:
            sequence.job.future.set_exception(exc)
            return
        sequence.job.future.set_result(Completion(text, len(sequence.prompt), count, reason))
