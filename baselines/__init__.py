"""Classical denoisers and the RBF SVM; importing this package registers them."""
