"""Classical denoisers and the RBF SVM; importing this package registers them."""

from baselines import block_matching, classical, nlm, svm, wavelet  # noqa: F401  (registration side effects)
