"""PostgreSQL: the pool, the migrations, the named queries and the one module that runs them."""
