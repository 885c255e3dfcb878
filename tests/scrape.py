"""Scrape a tier's Prometheus /metrics over HTTP and compare two scrapes."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    """{(sample name, sorted labels): value} of a Prometheus text exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: Samples, name: str, **labels: str) -> float:
    """One sample's value, 0 when the series does not exist (yet)."""
    return scraped.get((name, tuple(sorted(labels.items()))), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much one sample grew between two scrapes."""
    return value(after, name, **labels) - value(before, name, **labels)


def _checked(response: httpx.Response) -> Samples:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


def scrape(url: str) -> Samples:
    """GET `url` (a /metrics endpoint)."""
    return _checked(httpx.get(url, timeout=10))


async def scrape_async(client: httpx.AsyncClient, url: str) -> Samples:
    """GET `url` (a /metrics endpoint) with an async client."""
    return _checked(await client.get(url))
