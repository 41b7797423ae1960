"""The manifests API."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("manifests", __name__)
