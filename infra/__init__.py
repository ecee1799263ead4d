"""Development infrastructure: native stack, Airflow launcher, generator, benchmark.

Not part of the product package ``jobs``, which never imports it.
"""
