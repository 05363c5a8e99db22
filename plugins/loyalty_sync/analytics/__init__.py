"""The analyst surface: the ``analytics`` schema's views and their generated data dictionary."""
