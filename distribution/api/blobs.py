"""The blobs API."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("blobs", __name__)
