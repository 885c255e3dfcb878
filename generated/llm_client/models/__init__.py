"""Contains all the data models used in inputs/outputs"""

from .finish_reason import FinishReason
from .generate_request import GenerateRequest
from .generate_request_json_schema import GenerateRequestJsonSchema
from .generate_request_tool_choice_type_0 import GenerateRequestToolChoiceType0
from .generate_request_tool_choice_type_1 import GenerateRequestToolChoiceType1
from .generate_response import GenerateResponse
from .health import Health
from .health_status import HealthStatus
from .message import Message
from .message_role import MessageRole
from .model_info import ModelInfo
from .model_list import ModelList
from .problem import Problem
from .stream_text import StreamText
from .stream_tool_call import StreamToolCall
from .timing import Timing
from .tool import Tool
from .tool_call import ToolCall
from .tool_parameters import ToolParameters

__all__ = (
    "FinishReason",
    "GenerateRequest",
    "GenerateRequestJsonSchema",
    "GenerateRequestToolChoiceType0",
    "GenerateRequestToolChoiceType1",
    "GenerateResponse",
    "Health",
    "HealthStatus",
    "Message",
    "MessageRole",
    "ModelInfo",
    "ModelList",
    "Problem",
    "StreamText",
    "StreamToolCall",
    "Timing",
    "Tool",
    "ToolCall",
    "ToolParameters",
)
