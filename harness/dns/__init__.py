"""DNS configuration logic shared by the backends and the load generators (pure, no I/O)."""
