"""The REST tier: the public OpenAPI contract served by Connexion in front of the gRPC proxy."""
