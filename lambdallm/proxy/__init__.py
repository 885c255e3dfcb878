"""The gRPC proxy: llm.v1.LlmService in front of the LLM backend's HTTP API."""
