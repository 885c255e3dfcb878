"""Thin Connexion handlers bound to specs/openapi.yaml's operations."""
