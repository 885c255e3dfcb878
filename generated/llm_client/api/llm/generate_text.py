from http import HTTPStatus
from typing import Any

import httpx

from ... import errors
from ...client import AuthenticatedClient, Client
from ...models.generate_request import GenerateRequest
from ...models.generate_response import GenerateResponse
from ...models.problem import Problem
from ...types import UNSET, Response, Unset


def _get_kwargs(
    *,
    body: GenerateRequest,
    x_request_id: str | Unset = UNSET,
) -> dict[str, Any]:
    headers: dict[str, Any] = {}
    if not isinstance(x_request_id, Unset):
        headers["X-Request-ID"] = x_request_id

    _kwargs: dict[str, Any] = {
        "method": "post",
        "url": "/query",
    }

    _kwargs["json"] = body.to_dict()

    headers["Content-Type"] = "application/json"

    _kwargs["headers"] = headers
    return _kwargs


def _parse_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> GenerateResponse | Problem | None:
    if response.status_code == 200:
        response_200 = GenerateResponse.from_dict(response.json())

        return response_200

    if response.status_code == 400:
        response_400 = Problem.from_dict(response.json())

        return response_400

    if response.status_code == 401:
        response_401 = Problem.from_dict(response.json())

        return response_401

    if response.status_code == 404:
        response_404 = Problem.from_dict(response.json())

        return response_404

    if response.status_code == 406:
        response_406 = Problem.from_dict(response.json())

        return response_406

    if response.status_code == 413:
        response_413 = Problem.from_dict(response.json())

        return response_413

    if response.status_code == 415:
        response_415 = Problem.from_dict(response.json())

        return response_415

    if response.status_code == 429:
        response_429 = Problem.from_dict(response.json())

        return response_429

    if response.status_code == 502:
        response_502 = Problem.from_dict(response.json())

        return response_502

    if response.status_code == 503:
        response_503 = Problem.from_dict(response.json())

        return response_503

    if response.status_code == 504:
        response_504 = Problem.from_dict(response.json())

        return response_504

    if client.raise_on_unexpected_status:
        raise errors.UnexpectedStatus(response.status_code, response.content)
    else:
        return None


def _build_response(
    *, client: AuthenticatedClient | Client, response: httpx.Response
) -> Response[GenerateResponse | Problem]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def sync_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: GenerateRequest,
    x_request_id: str | Unset = UNSET,
) -> Response[GenerateResponse | Problem]:
    """Continue a prompt, or answer a conversation

    Args:
        x_request_id (str | Unset):
        body (GenerateRequest): Exactly one of `prompt` (text the model continues) and `messages`
            (a conversation the model answers,
            with an optional `system` text) is required; sending both, or neither, is a 400 naming the
            two fields.
            `messages` starts with a `user` turn, alternates `user` and `assistant`, and ends with
            `user`; all its
            text (its tool calls' arguments included) and `system` together are at most 32000
            characters.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[GenerateResponse | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
        x_request_id=x_request_id,
    )

    response = client.get_httpx_client().request(
        **kwargs,
    )

    return _build_response(client=client, response=response)


def sync(
    *,
    client: AuthenticatedClient | Client,
    body: GenerateRequest,
    x_request_id: str | Unset = UNSET,
) -> GenerateResponse | Problem | None:
    """Continue a prompt, or answer a conversation

    Args:
        x_request_id (str | Unset):
        body (GenerateRequest): Exactly one of `prompt` (text the model continues) and `messages`
            (a conversation the model answers,
            with an optional `system` text) is required; sending both, or neither, is a 400 naming the
            two fields.
            `messages` starts with a `user` turn, alternates `user` and `assistant`, and ends with
            `user`; all its
            text (its tool calls' arguments included) and `system` together are at most 32000
            characters.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        GenerateResponse | Problem
    """

    return sync_detailed(
        client=client,
        body=body,
        x_request_id=x_request_id,
    ).parsed


async def asyncio_detailed(
    *,
    client: AuthenticatedClient | Client,
    body: GenerateRequest,
    x_request_id: str | Unset = UNSET,
) -> Response[GenerateResponse | Problem]:
    """Continue a prompt, or answer a conversation

    Args:
        x_request_id (str | Unset):
        body (GenerateRequest): Exactly one of `prompt` (text the model continues) and `messages`
            (a conversation the model answers,
            with an optional `system` text) is required; sending both, or neither, is a 400 naming the
            two fields.
            `messages` starts with a `user` turn, alternates `user` and `assistant`, and ends with
            `user`; all its
            text (its tool calls' arguments included) and `system` together are at most 32000
            characters.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        Response[GenerateResponse | Problem]
    """

    kwargs = _get_kwargs(
        body=body,
        x_request_id=x_request_id,
    )

    response = await client.get_async_httpx_client().request(**kwargs)

    return _build_response(client=client, response=response)


async def asyncio(
    *,
    client: AuthenticatedClient | Client,
    body: GenerateRequest,
    x_request_id: str | Unset = UNSET,
) -> GenerateResponse | Problem | None:
    """Continue a prompt, or answer a conversation

    Args:
        x_request_id (str | Unset):
        body (GenerateRequest): Exactly one of `prompt` (text the model continues) and `messages`
            (a conversation the model answers,
            with an optional `system` text) is required; sending both, or neither, is a 400 naming the
            two fields.
            `messages` starts with a `user` turn, alternates `user` and `assistant`, and ends with
            `user`; all its
            text (its tool calls' arguments included) and `system` together are at most 32000
            characters.

    Raises:
        errors.UnexpectedStatus: If the server returns an undocumented status code and Client.raise_on_unexpected_status is True.
        httpx.TimeoutException: If the request takes longer than Client.timeout.

    Returns:
        GenerateResponse | Problem
    """

    return (
        await asyncio_detailed(
            client=client,
            body=body,
            x_request_id=x_request_id,
        )
    ).parsed
