"""Data: the clip/pair contract, validation with quarantine, and the synthetic corpus."""
