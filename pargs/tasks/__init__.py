"""Tasks that ship with pargs: the embedded synthetic review task (no network needed)."""
