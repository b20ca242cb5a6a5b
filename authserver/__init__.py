"""authserver: an OAuth 2.0 authorization server for the Phraseanet platform."""

__version__ = "0.1.0"
