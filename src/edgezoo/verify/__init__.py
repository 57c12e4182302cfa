"""Parity verification between an original model and its conversion."""

# Verification runs every runtime on this many threads whatever the machine, so that a parity report (and its
# timing in an export) is the same on a laptop, a CI box with 2 shared cores and a 64-core server.
VERIFY_THREADS = 2
