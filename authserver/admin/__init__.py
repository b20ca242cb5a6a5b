"""The admin API: JSON for the platform, on its own listener, behind admin bearer tokens."""
