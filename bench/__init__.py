"""denoise-bench: classical filters and neural autoencoders on the same data and noise."""

__version__ = "0.1.0"
