"""GET /models: the models the deployment serves, through the gRPC proxy's ListModels."""

from __future__ import annotations

import dataclasses
from typing import Any

from connexion import request

from lambdallm import logs
from lambdallm.rest import models

JSON = {"Content-Type": "application/json"}


async def list_models() -> tuple[dict[str, Any], int, dict[str, str]]:
    """listModels: the ModelList, the default first."""
    state = request.state
    served = await models.list_models(state.llm, logs.request_id.get(), state.settings.deadline_s)
    return {"models": [dataclasses.asdict(model) for model in served]}, 200, JSON
