"""Typed keys of the worker app's state (shared by app.py and routes.py)."""

from __future__ import annotations

from aiohttp import web

from models.worker.engine import Engine
from models.worker.metrics import WorkerMetrics
from models.worker.settings import WorkerSettings

SETTINGS_KEY = web.AppKey("settings", WorkerSettings)
ENGINE_KEY = web.AppKey("engine", Engine)
METRICS_KEY = web.AppKey("metrics", WorkerMetrics)
