"""CLI command modules. Each exposes `register(subparsers)` and keeps heavy imports inside its handler."""
