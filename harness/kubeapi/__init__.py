"""The one Kubernetes API client of every backend (issue 18 item 2).

- :mod:`.client`: typed JSON over HTTPS (client certificates or a token), sockets optionally
  made in a network namespace; :class:`~.client.KubeAPI`, the verbs the cluster driver uses;
- :mod:`.kubeconfig`: a kubeconfig read as kubectl reads it, into a client (kind's, a user's
  cluster's, the embedded cluster's);
- :mod:`.wait`: polling a readiness probe until it passes, with the last reason on timeout.
"""
