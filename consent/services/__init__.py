"""Consent's business operations: the only code that writes consent's tables."""
