"""The referrers API."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("referrers", __name__)
