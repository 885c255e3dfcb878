"""Fakes the tests of the proxy, the REST tier and the client run against."""
