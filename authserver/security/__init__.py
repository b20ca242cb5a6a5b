"""Keys, tokens, client secrets and user passwords: the pure cryptographic parts."""
