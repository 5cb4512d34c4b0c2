"""The use cases the triggers call (sync one user, apply writes, apply an outbound change,
connect) and the composition root (``bootstrap``). May import every layer below it; the
trigger packages in ``functions/`` import only this package."""
