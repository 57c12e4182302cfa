"""The artifact bundle: staged and published atomically (staging), its config.yaml / runtime_options.yaml parts in
TI's schema (config), the TI model-zoo package (ti_package), and whether a file is (built from) a stand-in
(provenance)."""
