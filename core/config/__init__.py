"""Settings (SPEC section 2): parsed and validated in one place, passed in everywhere else.
May import ``core.plan`` only."""
