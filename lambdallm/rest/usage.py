"""Usage per key and model: Prometheus counters labelled by key id (never a secret) and by the model that answered
(the backend's ids, not the client's words), so labels are bounded by the numbers of keys and models."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge

REQUESTS = "lambdallm_rest_key_requests"
TOKENS = "lambdallm_rest_key_tokens"


@dataclass
class Answer:
    """What one request's answer used, once it is known."""

    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def tokens(self) -> int:
        """Input plus output: what tokens_per_minute counts."""
        return self.input_tokens + self.output_tokens


# The answer of the request being served: set by the limits' middleware, filled in where the usage is read.
current: ContextVar[Answer | None] = ContextVar("lambdallm_answer", default=None)


def record(model: str, input_tokens: int, output_tokens: int) -> None:
    """Note the usage of the current request's answer (nothing outside a keyed request)."""
    answer = current.get()
    if answer is not None:
        answer.model, answer.input_tokens, answer.output_tokens = model, input_tokens, output_tokens


class UsageMetrics:
    """Per key and model: answered requests and their tokens; per key and limit: refusals; and the store's state."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            REQUESTS, "Answered generation requests per key and model", ["key", "model"], registry=registry
        )
        self.tokens = Counter(
            TOKENS, "Tokens per key, model and type (input, output)", ["key", "model", "type"], registry=registry
        )
        self.refused = Counter(
            "lambdallm_rest_key_refused", "Requests refused by a key's limit (429)", ["key", "limit"], registry=registry
        )
        self.store_errors = Counter(
            "lambdallm_rest_limits_store_errors",
            "Calls to the shared limits store (Redis) that failed",
            registry=registry,
        )
        self.store_up = Gauge(
            "lambdallm_rest_limits_store_up", "1 while the limits store answers, 0 while it is away", registry=registry
        )
        self.store_up.set(1)

    def count(self, key: str, answer: Answer) -> None:
        """Add one answered request of `key`."""
        model = answer.model or "unknown"
        self.requests.labels(key, model).inc()
        self.tokens.labels(key, model, "input").inc(answer.input_tokens)
        self.tokens.labels(key, model, "output").inc(answer.output_tokens)
