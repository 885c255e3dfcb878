"""The gRPC calls a request has open, so that a client who hangs up cancels its calls, not the task awaiting them.

grpc.aio frees a batch's native operations only when the coroutine awaiting the batch sees it complete: a task
cancelled while it awaits a read or a unary answer leaves them allocated (grpc/grpc#43360), and every abandoned
stream made the REST tier about 1.2 KB larger for good. Cancelling the call completes the pending batch with
CANCELLED instead, and the request's work then ends by itself.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Protocol, TypeVar


class Cancellable(Protocol):
    """What the REST tier needs of a grpc.aio call."""

    def cancel(self) -> bool: ...

    def done(self) -> bool: ...


CallT = TypeVar("CallT", bound=Cancellable)
_open: ContextVar[list[Cancellable] | None] = ContextVar("lambdallm_rest_open_calls", default=None)


def opened(call: CallT) -> CallT:
    """Record `call` as one of the current request's, if the request is tracked; returns it."""
    calls = _open.get()
    if calls is not None:
        calls.append(call)
    return call


class OpenCalls:
    """The calls opened by the work started while `track()` is in effect (tasks copy the context they start in)."""

    def __init__(self) -> None:
        self.calls: list[Cancellable] = []

    def track(self) -> Token[list[Cancellable] | None]:
        """Make calls opened from now on in this context (and tasks started from it) ours; `untrack` undoes it."""
        return _open.set(self.calls)

    def untrack(self, token: Token[list[Cancellable] | None]) -> None:
        """Stop tracking, once the request's work has ended, and let go of its calls: each call refers to its
        task, the task to the context it was started in, and that context to this list, so holding them would
        leave every request's calls (and what their contexts hold) as a cycle for the garbage collector."""
        _open.reset(token)
        self.calls.clear()

    def cancel(self) -> bool:
        """Cancel every call still running; True if there was one."""
        running = [call for call in self.calls if not call.done()]
        for call in running:
            cancel_call(call)
        return bool(running)


def cancel_call(call: Cancellable) -> None:
    """Cancel `call` in gRPC's core only; the call's own tasks then see their batches fail and end by themselves.

    grpc.aio's `cancel()` also cancels the task that sends a stream's request and awaits its initial metadata:
    a call cancelled that early (a client gone before the first event) left that task's batch allocated, some
    15 KB each (grpc/grpc#43360, the same leak as above)."""
    core = getattr(call, "_cython_call", None)
    if core is None:
        call.cancel()
    elif not core.done():
        core.cancel("Locally cancelled by application!")  # grpc.aio's own words for a local cancellation
