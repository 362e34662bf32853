"""Locust users, load shapes and the runner entry point.

``import locust`` monkey-patches the standard library with gevent. Only ``users``,
``shapes`` and ``run`` import it, and they run in their own process
(``python -m loadgen.locust.run``). ``plan``, ``schedule``, ``stats`` and ``launch`` are
Locust-free and safe to import anywhere.
"""
