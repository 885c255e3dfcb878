"""Sampling for the llama.cpp engine: a request's sampler chain, and a grammar applied as llama.cpp's common sampler
applies it (the freely drawn token checked first; the whole vocabulary only when the grammar refuses it)."""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np

from lambdallm.local_cloud.engines import GenerationRequest

# llama.cpp's llama_token_data (token id, logit, probability), for candidate arrays made with numpy.
_TOKEN_DATA = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])


def _token_array(candidates: Any) -> Any:
    """A llama_token_data_array over `candidates` (which must outlive it)."""
    data = candidates.ctypes.data_as(ctypes.POINTER(llama_cpp.llama_token_data))
    return llama_cpp.llama_token_data_array(data=data, size=len(candidates), selected=-1, sorted=False)


def allows(grammar: Any, token: int) -> bool:
    """Whether `grammar`, where it stands, allows `token` next."""
    single = np.array([(token, 0.0, 0.0)], dtype=_TOKEN_DATA)
    llama_cpp.llama_sampler_apply(grammar, ctypes.byref(_token_array(single)))
    return bool(np.isfinite(single["logit"][0]))


def sampler_chain(request: GenerationRequest) -> Any:
    """The request's sampler chain: None for greedy decoding at temperature 0, else llama.cpp's usual top-k 40,
    top-p, min-p 0.05, temperature and a seeded draw (a random seed unless the request gives one)."""
    if request.temperature <= 0:
        return None
    chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
    seed = llama_cpp.LLAMA_DEFAULT_SEED if request.seed is None else request.seed & 0xFFFFFFFF
    for sampler in (
        llama_cpp.llama_sampler_init_top_k(40),
        llama_cpp.llama_sampler_init_top_p(request.top_p, 1),
        llama_cpp.llama_sampler_init_min_p(0.05, 1),
        llama_cpp.llama_sampler_init_temp(request.temperature),
        llama_cpp.llama_sampler_init_dist(seed),
    ):
        llama_cpp.llama_sampler_chain_add(chain, sampler)
    return chain


def draw_within(grammar: Any, chain: Any, logits: Any) -> int:
    """A token drawn from the whole vocabulary (`logits`) after `grammar` has ruled out what it does not allow:
    the highest left without a `chain` (greedy decoding), else the chain's draw."""
    candidates = np.empty(len(logits), dtype=_TOKEN_DATA)
    candidates["id"] = np.arange(len(logits), dtype=np.int32)
    candidates["logit"], candidates["p"] = logits, 0.0
    array = _token_array(candidates)
    llama_cpp.llama_sampler_apply(grammar, ctypes.byref(array))
    if chain is None:
        return int(candidates["id"][candidates["logit"].argmax()])
    llama_cpp.llama_sampler_apply(chain, ctypes.byref(array))
    return int(array.data[array.selected].id)
