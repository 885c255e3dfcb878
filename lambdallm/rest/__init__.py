"""The REST tier: the public OpenAPI contract served by Connexion in front of the gRPC proxy."""

import warnings

with warnings.catch_warnings():
    # connexion 3.3's imports warn about its own dependencies (starlette.testclient wants httpx2,
    # jsonschema.RefResolver is deprecated): not ours to fix, and a bare line would break JSON-lines logs.
    warnings.simplefilter("ignore")
    import connexion  # noqa: F401
