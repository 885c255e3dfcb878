from enum import StrEnum


class FinishReason(StrEnum):
    CONTENT_FILTER = "content_filter"
    LENGTH = "length"
    STOP = "stop"

    def __str__(self) -> str:
        return str(self.value)
