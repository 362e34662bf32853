"""conntrack-harness: reproduce conntrack-caused DNS timeouts and prove remediations."""

__version__ = "0.1.0"
