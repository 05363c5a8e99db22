"""Build the ``loyalty`` schema: test accounts, credit lots, and the customer profile with its flags."""
