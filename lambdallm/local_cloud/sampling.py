"""Sampling for the llama.cpp engine: a request's sampler chain, and a grammar applied as llama.cpp's common sampler
applies it (the freely drawn token checked first; the whole vocabulary only when the grammar refuses it)."""

from __future__ import annotations

import collections
import ctypes
from typing import Any

import llama_cpp
import numpy as np

from lambdallm.local_cloud.engines import GenerationRequest, Grammar

# llama.cpp's llama_token_data (token id, logit, probability), for candidate arrays made with numpy.
TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
TOP_K = 40  # the sampler chain's top-k, as llama.cpp's common sampler sets it
# A grammar is tried on the best this many tokens first (and on every token that ties with the last of them).
BEST_FIRST = 256
# Where a grammar allows at most this many tokens, the whole vocabulary's verdict is remembered (FewAllowed).
FEW = 1024


def token_array(candidates: Any) -> Any:
    """A llama_token_data_array over `candidates` (which must outlive it)."""
    data = candidates.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data))
    return llama_cpp.llama_token_data_array(data=data, size=len(candidates), selected=-1, sorted=False)


def allows(grammar: Any, token: int) -> bool:
    """Whether `grammar`, where it stands, allows `token` next."""
    single = np.array([(token, 0.0, 0.0)], dtype=TOKEN_DATA)
    llama_cpp.llama_sampler_apply(grammar, ctypes.byref(token_array(single)))
    return bool(np.isfinite(single["logit"][0]))


def sampler_chain(request: GenerationRequest) -> Any:
    """The request's sampler chain: None for greedy decoding at temperature 0, else llama.cpp's usual top-k 40,
    top-p, min-p 0.05, temperature and a seeded draw (a random seed unless the request gives one)."""
    if request.temperature <= 0:
        return None
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    seed = llama_cpp.LLAMA_DEFAULT_SEED if request.seed is None else request.seed & 0xFFFFFFFF
    for sampler in (
        llama_cpp.llama_sampler_init_top_k(TOP_K),
        llama_cpp.llama_sampler_init_top_p(request.top_p, 1),
        llama_cpp.llama_sampler_init_min_p(0.05, 1),
        llama_cpp.llama_sampler_init_temp(request.temperature),
        llama_cpp.llama_sampler_init_dist(seed),
    ):
        llama_cpp.llama_sampler_chain_add(chain, sampler)
    return chain


class FewAllowed:
    """The tokens a grammar allows where it allows few, by grammar and the tokens it has accepted (which fix where it
    stands): what a pass over the whole vocabulary found, so that the next request to stand there (the same schema's
    `{"name": "` begins every answer to it) draws among them alone. Least recently used first out; one engine
    thread uses it."""

    def __init__(self, places: int = 4096) -> None:
        self._places = places
        self._allowed: collections.OrderedDict[tuple[Grammar, tuple[int, ...]], Any] = collections.OrderedDict()

    def get(self, place: tuple[Grammar, tuple[int, ...]]) -> Any:
        allowed = self._allowed.get(place)
        if allowed is not None:
            self._allowed.move_to_end(place)
        return allowed

    def put(self, place: tuple[Grammar, tuple[int, ...]], allowed: Any) -> None:
        self._allowed[place] = allowed
        if len(self._allowed) > self._places:
            self._allowed.popitem(last=False)

    def __len__(self) -> int:
        return len(self._allowed)


class Guide:
    """A request's grammar where it stands: llama.cpp's grammar sampler and the tokens it has accepted."""

    def __init__(self, grammar: Grammar, sampler: Any, memory: FewAllowed) -> None:
        self.grammar, self.sampler, self._memory = grammar, sampler, memory
        self._accepted: list[int] = []

    def allows(self, token: int) -> bool:
        return allows(self.sampler, token)

    def accept(self, token: int) -> None:
        llama_cpp.llama_sampler_accept(self.sampler, token)
        self._accepted.append(token)

    def draw(self, chain: Any, logits: Any) -> int:
        """A token drawn from the whole vocabulary (`logits`) after this grammar, where it stands, has ruled out what
        it does not allow: the highest left without a `chain` (greedy decoding), else the chain's draw.

        The grammar is tried on the best BEST_FIRST tokens first: a grammar's pass over a vocabulary of 262,144
        tokens (Gemma's) costs more than the model's step. The draw is the same as over the whole vocabulary whenever
        the best tokens hold enough allowed ones: any allowed token outside them has a lower logit than each of them,
        so the highest allowed (greedy), or the TOP_K highest allowed that the chain keeps, are all among them.
        Otherwise, the whole vocabulary, at most once per place where the grammar allows few tokens (it allows the
        same ones there every time): there, later draws are among those few alone."""
        place = (self.grammar, tuple(self._accepted))
        known = self._memory.get(place)
        if known is not None:
            token, _ = _draw_among(self.sampler, chain, logits, known, 0)
        elif (token := _draw_among_best(self.sampler, chain, logits)) is None:
            token, allowed = _draw_among(self.sampler, chain, logits, np.arange(len(logits)), 0)
            if len(allowed) <= FEW:
                self._memory.put(place, allowed)
        assert token is not None  # a draw that needs no allowed token always draws
        return token

    def free(self) -> None:
        llama_cpp.llama_sampler_free(self.sampler)


def _draw_among_best(grammar: Any, chain: Any, logits: Any) -> int | None:
    """The draw among the best BEST_FIRST tokens, or None if they hold too few allowed ones (see Guide.draw)."""
    threshold = np.partition(logits, -BEST_FIRST)[-BEST_FIRST] if len(logits) > BEST_FIRST else -np.inf
    best = np.flatnonzero(logits >= threshold)  # in id order, ties with the last included, as argmax breaks them
    return _draw_among(grammar, chain, logits, best, 1 if chain is None else TOP_K)[0]


def _draw_among(grammar: Any, chain: Any, logits: Any, ids: Any, enough: int) -> tuple[int | None, Any]:
    """The draw among the tokens `ids` that `grammar` allows (None if fewer than `enough` of them are), and those
    allowed ids."""
    candidates = np.empty(len(ids), dtype=TOKEN_DATA)
    candidates["id"], candidates["logit"], candidates["p"] = ids, logits[ids], 0.0
    array = token_array(candidates)
    llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
    allowed = np.isfinite(candidates["logit"])
    if allowed.sum() < enough:
        return None, None
    allowed_ids = candidates["id"][allowed]
    if chain is None:
        return int(candidates["id"][candidates["logit"].argmax()]), allowed_ids
    llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
    return int(array.data[array.selected].id), allowed_ids
