"""`lightonml.projections`: the OPU as a torch module (`.torch`) or a scikit-learn transformer
(`.sklearn`); each imports its framework, nothing else here does."""
