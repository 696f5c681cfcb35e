"""Talking to Twilio: the client, what a failed request means, and account reads providers and commands share."""
