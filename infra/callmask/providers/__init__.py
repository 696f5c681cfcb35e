"""Pulumi dynamic providers over the official `twilio` SDK, one module per Twilio resource family, and their host.

Existing stacks unpickle these classes by module path: never rename or move them.
"""
