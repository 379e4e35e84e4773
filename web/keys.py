"""Typed keys of the web app's state (shared by app.py and routes.py)."""

from __future__ import annotations

import jinja2
from aiohttp import web

from colorbot.settings import Settings
from db.repo import Database
from web.boards import BoardCache
from web.family import FamilyPages
from web.images import ThumbnailCache

SETTINGS_KEY = web.AppKey("settings", Settings)
DB_KEY = web.AppKey("db", Database)
FAMILY_KEY = web.AppKey("family", FamilyPages)
THUMBS_KEY = web.AppKey("thumbs", ThumbnailCache)
BOARDS_KEY = web.AppKey("boards", BoardCache)
TEMPLATES_KEY = web.AppKey("templates", jinja2.Environment)
