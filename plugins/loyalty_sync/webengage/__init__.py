"""WebEngage delivery: catalog, payloads, hook and the local stand-in."""
