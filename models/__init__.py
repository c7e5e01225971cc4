"""Neural denoisers and classifiers; importing this package registers them."""
