"""Classical denoisers and the RBF SVM; importing this package registers them."""

from baselines import bm3d_package, bm3d_torch, classical, nlm, svm, wavelet  # noqa: F401  (registration side effects)
