"""Runtime: the durable inbox and per-user workers, reply routing, timed heartbeats."""
