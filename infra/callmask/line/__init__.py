"""The dial-out line itself: the gate every stack's flow passes before anything is registered, and the
ComponentResource that owns the flow, the number, the binding and the PIN-check Function."""
