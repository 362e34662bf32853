"""Packet captures for bug bundles: tcpdump in the client pods, reduced to the pairs that matter."""
