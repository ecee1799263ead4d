"""Development infrastructure (native stack, Airflow launcher, generator, benchmark): not part of the product package ``jobs``."""
