"""What the harness and the load generator share, so that ``loadgen`` need not import ``harness``.

Small and mostly pure: the one error hierarchy (:mod:`.errors`), resolv.conf parsing and
search-list expansion (:mod:`.resolvconf`), the statistics (:mod:`.stats`), the result.json
sections a load worker builds itself (:mod:`.loadresult`), and the one piece of I/O both need:
entering a network namespace and making sockets in it (:mod:`.netns`). Nothing here imports
``harness`` or ``loadgen`` (``tests/unit/test_layout.py`` checks).
"""
