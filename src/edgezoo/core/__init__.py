"""Infrastructure every layer uses: the error hierarchy, progress lines, tables/JSON, Ctrl-C handling, the lazy
registry, files and folders published atomically, and inter-process locks."""
