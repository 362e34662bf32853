"""HTTP load generation: the wire format, plans and results, and the asyncio raw client."""
