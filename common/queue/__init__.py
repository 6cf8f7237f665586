"""The job queue: Celery's configuration, inferq's kombu transport, and recovery that re-queues lost work.

It may import ``common.store`` and the shared vocabulary; never ``common.processes``, ``api``
or ``workers`` (tasks are sent by name).
"""
