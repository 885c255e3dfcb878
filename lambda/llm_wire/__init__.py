"""What crosses λλM's tiers: strict JSON reading, Accept negotiation, problem documents, the JSON log formatter,
the request-id policy and the request limits.

Standard library only, and shipped beside `llm_lambda` in the Lambda's deployment package (deploy/template.yaml's
CodeUri is lambda/); the REST tier, the gRPC proxy and the local cloud import it under this name.
"""
