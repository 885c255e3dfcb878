"""GET /health (liveness) and GET /ready (the whole chain behind the REST tier answers)."""

from __future__ import annotations

from connexion import request

from lambdallm.rest import llm

JSON = {"Content-Type": "application/json"}


async def get_health() -> tuple[dict[str, str], int, dict[str, str]]:
    """getHealth: ok while this process answers."""
    return {"status": "ok"}, 200, JSON


async def get_readiness() -> tuple[dict[str, str], int, dict[str, str]]:
    """getReadiness: ok only when the proxy is SERVING, which it says only while the backend answers."""
    state = request.state
    await llm.check_ready(state.health, state.settings.ready_timeout_s, state.llm)
    return {"status": "ok"}, 200, JSON
