"""UDP load that is not DNS resolution: the same-port client."""
