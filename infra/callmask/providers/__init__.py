"""Pulumi dynamic providers over the official `twilio` SDK.

Existing stacks unpickle these classes by module path: never rename or move them.
"""
