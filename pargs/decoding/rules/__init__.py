"""The built-in decoding rules, one module each; importing this package registers them by kind."""

from pargs.decoding.rules import best_of_n, guided, sample  # noqa: F401  (each registers its kind)
