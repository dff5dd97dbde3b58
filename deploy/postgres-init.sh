#!/bin/sh
# Run once by the PostgreSQL image when its data directory is new: the
# server's own role, which the migration then grants what it needs (and only
# INSERT and SELECT on the audit log).
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" \
  -v app_password="$KITH_APP_DB_PASSWORD" \
  -c "CREATE ROLE kith_app LOGIN PASSWORD :'app_password'"
