"""Create the application database named in DATABASE_URL if it does not exist yet."""

import os
import sys

import environ
import psycopg
from psycopg import sql

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
environ.Env.read_env(os.path.join(os.path.dirname(__file__), "..", ".env"), overwrite=False)
url = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/saas")
config = environ.Env.db_url_config(url)
with psycopg.connect(
    host=config["HOST"] or "127.0.0.1",
    port=config["PORT"] or 5432,
    user=config["USER"] or "postgres",
    password=config["PASSWORD"] or None,
    dbname="postgres",
    autocommit=True,
) as conn:
    exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
    if not exists:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
        print(f"createdb: created database {config['NAME']}")
    else:
        print(f"createdb: database {config['NAME']} exists")
