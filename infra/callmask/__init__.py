"""callmask: a PIN-protected Twilio dial-out line, declared with Pulumi."""
