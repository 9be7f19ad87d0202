"""`lightonml.encoding`: encoders to the OPU's binary input and decoders of its outputs."""
