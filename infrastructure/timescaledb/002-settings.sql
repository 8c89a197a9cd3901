-- Database-level settings for the arbbot database (created from POSTGRES_DB).
ALTER DATABASE arbbot SET timezone TO 'UTC';
-- Analytics writes in batches; keep statements from hanging the pool forever.
ALTER DATABASE arbbot SET statement_timeout TO '60s';
ALTER DATABASE arbbot SET idle_in_transaction_session_timeout TO '120s';
