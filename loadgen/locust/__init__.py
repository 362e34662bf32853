"""Locust users, load shapes and the runner entry points.

``import locust`` monkey-patches the standard library with gevent. Only ``users``,
``shapes``, ``distributed``, ``run`` and ``userrun`` import it, and they run in their own
processes (``python -m loadgen.locust.run`` for the harness's own users,
``python -m loadgen.locust.userrun`` for a scenario's locustfile). ``plan``, ``userplan``,
``schedule``, ``stats``, ``endpoints`` and ``launch`` are Locust-free and safe to import
anywhere.
"""
