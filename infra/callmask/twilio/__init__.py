"""Talking to Twilio: the client (credentials, timeouts, safe retries, the base-URL override), what a failed
request means, and the account reads that providers and commands share."""
