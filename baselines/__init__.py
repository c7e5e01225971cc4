"""Classical denoisers and the RBF SVM; importing this package registers them."""

from baselines import block_matching, bm3d_torch, classical, nlm, svm, wavelet  # noqa: F401  (registration side effects)
