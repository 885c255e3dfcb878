"""Fixtures: the whole chain in the test's loop (fake backend, proxy, REST tier) and a `bedrest` runner."""

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.stack import API_KEY, running_proxy, running_rest

BEDREST = Path(sys.executable).with_name("bedrest")


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
async def rest_url(fake):
    async with running_proxy(fake) as proxy, running_rest(proxy.target) as url:
        yield url


@pytest.fixture
def bedrest(tmp_path):
    """Run `bedrest` as a subprocess with a clean config environment and the REST tier's key (BEDREST_API_KEY)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BEDREST_")}
    empty = tmp_path / "bedrest.toml"  # a named config file must exist; an empty one leaves the defaults
    empty.write_text("")
    env |= {"HOME": str(tmp_path), "BEDREST_CONFIG": str(empty), "BEDREST_API_KEY": API_KEY}

    async def run(*args, stdin=b"", **extra_env):  # a variable given as None is removed
        process = await asyncio.create_subprocess_exec(
            BEDREST,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={key: value for key, value in (env | extra_env).items() if value is not None},
        )
        out, err = await asyncio.wait_for(process.communicate(stdin), 30)
        return Finished(process.returncode, out.decode(), err.decode())

    return run
