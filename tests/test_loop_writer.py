"""LoopWriter: lines logged on other threads are written by the event loop's thread, every one and in order; a
line logged on the loop, or with no loop running, is written at once; none is lost when the loop stops."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import time
from collections.abc import Iterator

import pytest

from lambdallm import logs
from lambdallm.logs import LoopWriter


class Recording(io.StringIO):
    """A stream that records which thread wrote each piece."""

    def __init__(self) -> None:
        super().__init__()
        self.writers: list[int] = []

    def write(self, text: str) -> int:
        self.writers.append(threading.get_ident())
        return super().write(text)


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    each = logging.getLogger("tests.loop_writer")
    each.setLevel(logging.INFO)
    each.propagate = False
    yield each
    each.handlers.clear()


def writer_on(logger: logging.Logger, loop: asyncio.AbstractEventLoop) -> tuple[LoopWriter, Recording]:
    stream = Recording()
    handler = LoopWriter(stream, logging.Formatter("%(message)s"), loop)
    logger.handlers[:] = [handler]
    return handler, stream


async def written(stream: Recording, lines: int) -> list[str]:
    deadline = time.monotonic() + 10
    while stream.getvalue().count("\n") < lines and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return stream.getvalue().splitlines()


def test_other_threads_lines_are_written_by_the_loops_thread_all_in_order(logger: logging.Logger) -> None:
    async def main() -> tuple[list[str], list[int], int]:
        _, stream = writer_on(logger, asyncio.get_running_loop())

        def log(worker: int) -> None:
            for line in range(200):
                logger.info("%d %d", worker, line)

        await asyncio.gather(*(asyncio.to_thread(log, worker) for worker in range(8)))
        return await written(stream, 1600), stream.writers, threading.get_ident()

    lines, writers, loop_thread = asyncio.run(main())
    assert len(lines) == 1600 and set(writers) == {loop_thread}
    assert len(writers) < 1600, "the lines that came meanwhile are written together"
    for worker in range(8):
        assert [line for line in lines if line.startswith(f"{worker} ")] == [f"{worker} {n}" for n in range(200)]


def test_a_line_logged_on_the_loop_or_with_no_loop_running_is_written_at_once(logger: logging.Logger) -> None:
    loop = asyncio.new_event_loop()
    try:
        _, stream = writer_on(logger, loop)
        logger.info("before the loop runs")
        assert stream.getvalue() == "before the loop runs\n"

        async def on_the_loop() -> str:
            logger.info("on the loop")
            return stream.getvalue()

        assert loop.run_until_complete(on_the_loop()).endswith("on the loop\n")
    finally:
        loop.close()
    logger.info("after it closed")
    assert stream.getvalue().endswith("after it closed\n")


def test_a_line_waiting_when_the_loop_stops_is_not_lost(logger: logging.Logger) -> None:
    async def main() -> tuple[LoopWriter, Recording, str]:
        handler, stream = writer_on(logger, asyncio.get_running_loop())
        thread = threading.Thread(target=logger.info, args=("from a thread",))
        thread.start()
        thread.join()  # the loop is blocked here: the line waits for it
        return handler, stream, stream.getvalue()

    handler, stream, before = asyncio.run(main())
    assert before == ""
    handler.flush()  # as logging.shutdown does at exit, if the loop's last turns did not write it
    assert stream.getvalue() == "from a thread\n"


def test_write_on_loop_hands_over_plain_stream_handlers_only(logger: logging.Logger) -> None:
    root = logging.getLogger()
    kept_root = root.handlers[:]
    plain, null = logging.StreamHandler(io.StringIO()), logging.NullHandler()
    plain.setFormatter(formatter := logging.Formatter("%(message)s!"))
    logger.handlers[:] = [plain, null]
    loop = asyncio.new_event_loop()
    try:
        logs.write_on_loop(loop, logger)
        (writer, same_null) = logger.handlers
        assert isinstance(writer, LoopWriter) and writer.stream is plain.stream and writer.formatter is formatter
        assert same_null is null
        assert [type(h) for h in root.handlers] == [
            LoopWriter if type(h) is logging.StreamHandler else type(h) for h in kept_root
        ]
    finally:
        root.handlers[:] = kept_root
        loop.close()


class Failing(logging.Formatter):
    def __init__(self, error: type[Exception]) -> None:
        super().__init__()
        self.error = error

    def format(self, record: logging.LogRecord) -> str:
        if record.msg == "fails":
            raise self.error("formatting")
        return str(record.msg)


@pytest.mark.parametrize("error", [RecursionError, ValueError])
def test_a_line_that_fails_to_format_fails_as_with_logging_s_own_stream_handler(
    logger: logging.Logger, error: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # handleError's report stays out of the test's output
    outcomes, loop = [], asyncio.new_event_loop()
    for handler in (logging.StreamHandler(io.StringIO()), LoopWriter(io.StringIO(), None, loop)):
        handler.setFormatter(Failing(error))
        logger.handlers[:] = [handler]
        try:
            logger.info("fails")
            raised = None
        except Exception as exc:
            raised = type(exc)
        logger.info("goes on")
        outcomes.append((raised, handler.stream.getvalue()))
    loop.close()
    assert outcomes[0] == outcomes[1] == (RecursionError if error is RecursionError else None, "goes on\n")
