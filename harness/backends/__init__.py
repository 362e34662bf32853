"""Backends realize a scenario's cluster: netns (default, embedded), kind, kubeconfig."""
