"""Commands on a stack: the flow a command works on, and reads and writes of a deployed stack on Twilio."""
