"""Parity verification between an original model and its conversion."""
