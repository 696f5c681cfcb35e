"""The line's Twilio Function (functions/pin-check.js) as Python sees it: its code with the PIN digests filled
in, the scrypt digests themselves, and a local run in Twilio's own Functions runtime."""
