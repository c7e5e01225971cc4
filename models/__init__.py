"""Neural denoisers and classifiers; importing this package registers them."""
from models import classifiers, stacked_classifier  # noqa: F401  (registers the classifiers)
