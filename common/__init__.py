"""What the API and the workers share.

At the top, the shared vocabulary: settings (``config``), the models file (``catalog``),
records and statuses, errors, ids, the wire shape, webhook rules, file storage and Redis
connections. These import nothing else of inferq. Below them, by concern:

- ``common.store``: prediction state in Redis (never imports Celery);
- ``common.queue``: Celery and kombu, and recovery of lost work;
- ``common.processes``: the ``inferq`` command and the processes it starts.

Nothing in ``common`` imports ``api`` or ``workers``.
"""
