"""The ``sketch`` model: a fast, deterministic image generator (scene plan, painter, canvas, adapter).

It imports the adapter base class and the shared vocabulary; never ``api``.
"""
