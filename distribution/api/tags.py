"""The tags API."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("tags", __name__)
