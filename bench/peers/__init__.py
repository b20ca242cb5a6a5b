"""The peers: other OAuth servers served on the same machine and PostgreSQL, installed by the
bench itself into throwaway directories (see bench/README.md, "Peers")."""
