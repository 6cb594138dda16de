"""The demo: a synthetic retail store sent through Journeyline's own ingest API.

``store`` generates it (pure: a seed and a clock in, Segment messages out), ``sender``
posts it to ``/v1/batch``, ``credentials`` keeps the demo's admin user and write key.
"""
