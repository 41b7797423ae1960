"""A container image registry compatible with the CNCF distribution registry."""

__version__ = "0.1.0"
