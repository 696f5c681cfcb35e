"""The dial-out line: the gate its flow passes, the ComponentResource that owns it, and Console adoption."""
