"""Pure renderers of the node data-plane rules both backend families install: the injected
race-window fault (:mod:`.faults`) and NodeLocal DNSCache's NOTRACK/ACCEPT rules
(:mod:`.nodelocal`). No subprocess here; a backend only loads the text they return."""
