"""Data: the clip/pair contract, validation with quarantine, ingest (the synthetic corpus is :mod:`clipguard.synth`)."""
