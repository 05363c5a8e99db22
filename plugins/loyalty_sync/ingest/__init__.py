"""Read Nector export folders into the ``nector`` staging tables."""
