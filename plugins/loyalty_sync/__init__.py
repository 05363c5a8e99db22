"""Batch sync of Nector loyalty activity into Postgres and on to WebEngage.

The modules follow the data flow: ``ingest`` reads export files into the ``nector`` staging schema,
``derive`` builds the ``loyalty`` profile and segment flags, ``webengage`` queues and delivers events
and user attributes, ``report`` summarises a run. ``tasks`` contains the entry points the DAG calls.
"""
