"""Commands on a stack: the flow a command works on (rendered with the stack's settings, or deployed), and
the reads of a deployed stack on Twilio (its calls, its account's dialing permissions, its revisions)."""
