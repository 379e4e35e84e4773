"""The worker: an aiohttp service that loads the family once and colors pages in batches.

`create_app(settings)` in `models.worker.app`; `colorbot worker` in `models.worker.cli`.
Importing this package is cheap (no torch): torch loads with the family.
"""
