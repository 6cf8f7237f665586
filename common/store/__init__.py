"""The prediction store: every record, key, Lua script, event, outbox entry and wake-up kept in Redis;
and the metadata of uploaded files (``files.py``, their bytes in ``common.storage``).

It imports only the shared vocabulary at the top of ``common``; never Celery or kombu,
``common.queue``, ``common.processes``, ``api`` or ``workers``.
"""
