"""The run path: the driver (``runner``), what a worker does with one unit (``worker``), the fit
cache and the classifier pool (``fits``, ``classifier_pool``), executors and the store."""
