"""The serving reference: llama.cpp's own llama-server, built once from the llama.cpp that llama-cpp-python vendors."""

from __future__ import annotations

import contextlib
import importlib.metadata
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from lambdallm.bench.loadgen import LoadResult, wrk

CACHE = Path.home() / ".cache" / "lambdallm" / "llama-server"
CMAKE_FLAGS = (
    "-DGGML_NATIVE=OFF",  # the same portable build as llama-cpp-python's (the Makefile's CMAKE_ARGS)
    "-DLLAMA_CURL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_SERVER=ON",
    "-DCMAKE_BUILD_TYPE=Release",
)


class LlamaServerError(RuntimeError):
    """llama-server could not be built or did not start."""


def llama_server_binary() -> Path:
    """llama-server for the installed llama-cpp-python's version, built under ~/.cache on first use.

    The build downloads llama-cpp-python's source distribution with pip and compiles CMake's `llama-server`
    target of the llama.cpp inside it (about 10 minutes on 2 cores; its log is `build.log` beside it).
    """
    version = importlib.metadata.version("llama-cpp-python")
    root = CACHE / version
    binary = root / "build" / "bin" / "llama-server"
    if binary.is_file():
        return binary
    print(f"bench: building llama-server {version} under {root} (once, about 10 minutes)", file=sys.stderr, flush=True)
    root.mkdir(parents=True, exist_ok=True)
    with (root / "build.log").open("w") as log:
        if not (root / "src" / "vendor" / "llama.cpp").is_dir():
            requirement = f"llama-cpp-python=={version}"
            pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", requirement]
            _run([*pip, "--dest", str(root / "sdist")], log)
            (sdist,) = (root / "sdist").glob("*.tar.gz")
            with tarfile.open(sdist) as archive:
                archive.extractall(root / "unpacked", filter="data")
            (unpacked,) = (root / "unpacked").iterdir()
            unpacked.rename(root / "src")
        source = root / "src" / "vendor" / "llama.cpp"
        _run(["cmake", "-S", str(source), "-B", str(root / "build"), *CMAKE_FLAGS], log)
        _run(["cmake", "--build", str(root / "build"), "--target", "llama-server", "-j2"], log)
    if not binary.is_file():
        raise LlamaServerError(f"the build finished without {binary}; see {root / 'build.log'}")
    return binary


def _run(command: list[str], log: IO[str]) -> None:
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    if subprocess.run(command, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
        raise LlamaServerError(f"{' '.join(command)} failed; see {log.name}")


@contextlib.contextmanager
def running_llama_server(
    model: Path, threads: int, context_tokens: int, slots: int, log: IO[str], timeout_s: float = 120.0
) -> Iterator[str]:
    """llama-server on a free loopback port with the local Bedrock's model, threads and slots; its base URL.

    As in the local Bedrock, each of the `slots` sequences gets `context_tokens` of context (`-c` is the total).
    """
    port = _free_port()
    command = [str(llama_server_binary()), "-m", str(model), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-t", str(threads), "-tb", str(threads), "-c", str(context_tokens * slots), "-np", str(slots)]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, timeout_s)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _free_port() -> int:
    # The chain's tiers already hold their ports (they bind port 0), so nothing else races for this one.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LlamaServerError(f"llama-server exited with status {process.returncode} at start")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass  # not listening yet, or 503 while the model loads
        time.sleep(0.2)
    raise LlamaServerError(f"llama-server did not become healthy within {timeout_s:g} s")


def completion_body(prompt: str, max_tokens: int, stream: bool = False) -> dict[str, Any]:
    """llama-server's /completion body for the bench's generation: the same prompt and token count, temperature 0.

    `cache_prompt` off: the local Bedrock evaluates every request's prompt afresh, so llama-server does too (it
    would otherwise skip a prompt its slot has just seen and answer its first token almost at once).
    """
    return {"prompt": prompt, "n_predict": max_tokens, "temperature": 0.0, "cache_prompt": False, "stream": stream}


def load_llama_server(
    url: str, prompt: str, max_tokens: int, connections: int, cap_s: float, requests_per_connection: int
) -> LoadResult:
    """A fixed batch of /completion requests from `connections` clients, through the same wrk runner as the chain."""
    body = completion_body(prompt, max_tokens)
    return wrk(f"{url}/completion", body, connections, cap_s, 300.0, requests_per_connection)
