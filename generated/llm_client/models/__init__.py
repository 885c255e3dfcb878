"""Contains all the data models used in inputs/outputs"""

from .finish_reason import FinishReason
from .generate_request import GenerateRequest
from .generate_response import GenerateResponse
from .health import Health
from .health_status import HealthStatus
from .message import Message
from .message_role import MessageRole
from .model_info import ModelInfo
from .model_list import ModelList
from .problem import Problem
from .stream_text import StreamText

__all__ = (
    "FinishReason",
    "GenerateRequest",
    "GenerateResponse",
    "Health",
    "HealthStatus",
    "Message",
    "MessageRole",
    "ModelInfo",
    "ModelList",
    "Problem",
    "StreamText",
)
