"""Load generators: DNS clients that behave like real resolvers, and HTTP clients."""
