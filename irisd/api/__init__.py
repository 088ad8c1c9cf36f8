"""The local control API: an aiohttp application over the daemon's `Services`, and its client."""
