"""The names of a bundle's files, shared by the code that writes bundles (staging), reads them (reader) and tells
edgezoo's output folders from others (outputs)."""

from __future__ import annotations

MANIFEST = "manifest.json"
VERIFY = "verify.json"
CONFIG = "config.yaml"
RUNTIME_OPTIONS = "runtime_options.yaml"
META_ARCH = "meta_arch.prototxt"
