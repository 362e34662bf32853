"""The images a kind run needs, and the Docker daemon that holds them; no cluster is driven here.

No machine here can pull an image, so the kind backend builds each one from pinned upstream
binaries and Debian's packages: the node image (:mod:`.kindbase`, :mod:`.kindnode`,
:mod:`.kindimages`, :mod:`.pause`), the loadgen and HTTP server images (:mod:`.loadgenimage`),
all written as image archives (:mod:`.imagearchive`). They go into this project's private
dockerd (:mod:`.dockerd`, with its runc wrapper :mod:`.runcwrap` and the host iptables it
leaves behind, :mod:`.hostfirewall`) or into a Docker daemon that already answers
(:mod:`.kinddocker` decides which, and which node image). The code that creates a cluster and
runs a scenario on it (``..kind``, ``..cluster``, ``..runcluster``) uses these modules; they
never import it.
"""
