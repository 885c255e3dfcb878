"""The local Bedrock's spans of one generation, made from its Timeline once it ends: `model.generate` holding
`model.slot_wait`, `model.prompt` and `model.decode`, with the first token as an event (docs/tracing.md).

The engine's one thread serves every request at once, so it keeps no spans: the scheduler notes the times and
the spans are written here, after the fact, under the request's server span: handed finished to the exporter
(`tracing.finished_span`), without the SDK's live span, which would cost four times as much."""

from __future__ import annotations

from typing import Any

from lambdallm import tracing
from lambdallm.local_cloud.engines import Completion
from lambdallm.local_cloud.scheduler import Timeline

SERVICE = "lambdallm-bedrock"


def new_timeline() -> Timeline | None:
    """A timeline to fill when this process traces, else None (the scheduler then notes nothing)."""
    return Timeline() if tracing.enabled() else None


def record(timeline: Timeline | None, model_id: str, completion: Completion | None, request_id: str) -> None:
    """Write the generation's spans under the current span, the Bedrock request's (nothing when `timeline` is None,
    or when that span is not sampled)."""
    if timeline is None or not timeline.queued:
        return
    ended = timeline.ended or timeline.queued
    slot = timeline.slot or ended
    first = timeline.first_token or ended
    attributes: dict[str, Any] = {"gen_ai.system": "aws.bedrock", "gen_ai.request.model": model_id}
    attributes["aws.request_id"] = request_id
    if completion is not None:
        attributes |= {
            "gen_ai.usage.input_tokens": completion.input_tokens,
            "gen_ai.usage.output_tokens": completion.output_tokens,
            "lambdallm.completion_reason": completion.reason,
        }
    events = (("first_token", timeline.first_token),) if timeline.first_token else ()
    model = tracing.finished_span(SERVICE, "model.generate", None, timeline.queued, ended, attributes, events)
    if model is not None:
        for name, start, end in (("model.slot_wait", timeline.queued, slot), ("model.prompt", slot, first)):
            tracing.finished_span(SERVICE, name, model, start, max(start, end))
        tracing.finished_span(SERVICE, "model.decode", model, first, max(first, ended))
