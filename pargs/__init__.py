"""pargs: reward-guided text generation with partial-sequence reward models, on PyTorch Lightning."""

__version__ = "0.1.0"
