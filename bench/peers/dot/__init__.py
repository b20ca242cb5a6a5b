"""django-oauth-toolkit's glue: a Django project with only what DOT's token and introspection
views need. It runs in a throwaway virtual environment (bench.peers.install), never in
authserver's, so nothing here is imported by the bench itself."""
