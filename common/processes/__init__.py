"""inferq's processes: the ``inferq`` command, the launcher, embedded Redis, the web server, logs and timers.

It may import any other part of ``common``; never ``api`` or ``workers`` (they are started
as commands, by module name).
"""
