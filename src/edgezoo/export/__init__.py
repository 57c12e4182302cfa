"""The export pipeline: a card or a user's graph -> sources -> recipe (convert + verify) -> bundle -> report."""
