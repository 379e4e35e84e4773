"""colorbot's public, read-only web page: the family, the leaderboard, the gallery.

`colorbot web` serves it with aiohttp (`web.app.create_app(settings)`), reading the
same database as the bot through `db/` and the family's manifest as JSON. It never
imports torch or discord, and it never writes: the gallery shows only servers that
turned it on with `/gallery enable`, read live on every request, so `/forget` and
`/gallery disable` take effect at once.
"""
