"""The local cloud: a local API Gateway running the Lambda handler, and a local Bedrock Runtime endpoint."""
