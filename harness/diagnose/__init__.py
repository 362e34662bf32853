"""Name the cause of DNS timeouts on a live host or node (:mod:`.live`, reading
:mod:`.procfs`); a finished run's phases are classified by :mod:`harness.judge.diagnosis`."""
