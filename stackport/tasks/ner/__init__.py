"""Named-entity recognition: one IOB2 tag per word of a sentence."""
