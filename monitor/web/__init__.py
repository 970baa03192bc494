"""Local, read-only web viewer of the artwork history (``monitor serve``).

Only the store (:mod:`monitor.store`), the results, image I/O and the report
are used here; the algorithms (change, depth, registration, pipeline) are
never imported.
"""

from monitor.web.app import create_app, serve

__all__ = ["create_app", "serve"]
