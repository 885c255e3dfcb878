"""The λλM Lambda function: API Gateway proxy event in, Amazon Bedrock call (InvokeModel or Converse), JSON answer out."""
