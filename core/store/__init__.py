"""The database: typed models, engines and one-transaction-per-change sessions."""
