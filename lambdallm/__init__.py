"""λλM: a contract-first LLM web service: REST -> gRPC -> API Gateway/Lambda -> Bedrock."""
