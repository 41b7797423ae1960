"""The TLS tests' registry fixture, shared by their modules."""

from tests.tls.test_tls import serve

__all__ = ["serve"]
