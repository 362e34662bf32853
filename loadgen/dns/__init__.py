"""DNS load: resolver models (glibc, musl, Go, sequential), their transports and the engine."""
