"""The line's PIN-check Function: its code with the digests filled in, and a run in Twilio's runtime."""
