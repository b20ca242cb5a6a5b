"""The benchmark harness: authserver's hot paths against a bare Starlette + asyncpg floor.

``python -m bench`` (see bench/README.md) starts a throwaway PostgreSQL, seeds it, serves
authserver and the floor side by side, loads both with wrk on loopback and reports every
figure as a ratio to the floor.
"""
