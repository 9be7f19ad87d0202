"""Reliability tools: codec fuzzing (`fuzz.py`), crash-safety helpers, soak runs."""
