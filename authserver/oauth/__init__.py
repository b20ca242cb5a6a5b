"""The OAuth 2.0 protocol: oauthlib decides, this package loads what it needs and stores what
it decided (see ``bridge``)."""
