"""The uploads API."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("uploads", __name__)
