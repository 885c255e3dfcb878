"""The λλM Lambda function: API Gateway proxy event in, Amazon Bedrock (Titan Text) call, JSON answer out."""
