"""What the tiers' Prometheus metrics share: latency buckets, token counting, the exposition of a registry.

Each running tier owns its own `CollectorRegistry` (never the process-wide default), so two tiers, or two
copies of one tier, in one process (the tests) keep their counts apart.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.exposition import choose_encoder

# Seconds: from a plumbing hop (about a millisecond) to a generation at the edge of the 29 s budget.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0)
# Refused at the edge: come back in a second (the in-flight requests of an LLM service end in seconds).
RETRY_AFTER_S = 1


class TokenCounter:
    """`<prefix>_tokens_total{type="input"|"output"}`: the tokens the answers report."""

    def __init__(self, prefix: str, registry: CollectorRegistry) -> None:
        tokens = Counter(f"{prefix}_tokens", "Tokens reported by the answers", ["type"], registry=registry)
        self._input, self._output = tokens.labels("input"), tokens.labels("output")

    def count(self, input_tokens: int, output_tokens: int) -> None:
        """Add one answer's token counts."""
        self._input.inc(input_tokens)
        self._output.inc(output_tokens)


def exposition(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The registry in the text format the scraper's Accept asks for (OpenMetrics or Prometheus 0.0.4)."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type
