"""The Django project that serves django-oauth-toolkit for the bench."""
