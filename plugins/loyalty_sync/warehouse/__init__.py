"""The Postgres warehouse: connections, SQL files and schema migrations."""
