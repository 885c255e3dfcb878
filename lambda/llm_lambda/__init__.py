"""The λλM Lambda function: API Gateway proxy event in, Amazon Bedrock (InvokeModel or Converse), JSON out."""
