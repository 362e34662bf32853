"""NodeLocal DNSCache's fixed names: the link-local listen address and the interface holding it.

The NOTRACK/ACCEPT rules are node-cache's own (real node-cache installs them on the node,
:mod:`harness.backends.netns.k8s.nodecache`); nothing here renders rules any more.
"""

from __future__ import annotations

LOCAL_IP = "169.254.20.10"
INTERFACE = "nodelocaldns"
