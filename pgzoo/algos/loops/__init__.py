"""Training loops that a family of algorithms shares; algorithms import loops and core, never each
other."""
