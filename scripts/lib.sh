#!/usr/bin/env bash
# Shared helpers for Kith's scripts: install what is missing, start PostgreSQL,
# and export DATABASE_URL. Sourced, never run on its own.
set -euo pipefail

KITH_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KITH_ROOT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  # Installs Debian packages that are missing, once, without prompts.
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing ${missing[*]}"
  if [ "$apt_updated" -eq 0 ]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    apt_install curl ca-certificates build-essential
    log "installing the Rust toolchain (rustup)"
    curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
    export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cc >/dev/null 2>&1 || apt_install build-essential
}

db_reachable() {
  psql "$1" -Atqc 'select 1' >/dev/null 2>&1
}

# Makes sure a PostgreSQL server answers and DATABASE_URL points at a database
# Kith may use. A DATABASE_URL given by the caller is used as it is.
ensure_postgres() {
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  if [ -n "${DATABASE_URL:-}" ]; then
    if db_reachable "$DATABASE_URL"; then return 0; fi
    log "DATABASE_URL is set but does not answer: $(printf '%s' "$DATABASE_URL" | sed -E 's#://([^:@/]+):[^@]*@#://\1:***@#')"
    return 1
  fi
  local url="postgres://kith:kith@127.0.0.1:5432/kith"
  if ! db_reachable "$url"; then
    if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
      apt_install postgresql postgresql-contrib
    fi
    if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
      local ver
      ver="$(ls /usr/lib/postgresql | sort -n | tail -1)"
      log "creating a PostgreSQL $ver cluster"
      as_root pg_createcluster "$ver" main >/dev/null
    fi
    local ver name status
    read -r ver name _ status _ < <(pg_lsclusters -h | head -1)
    if [ "$status" != "online" ]; then
      log "starting PostgreSQL $ver/$name"
      as_root pg_ctlcluster "$ver" "$name" start
    fi
    for _ in $(seq 1 30); do
      as_root runuser -u postgres -- psql -Atqc 'select 1' >/dev/null 2>&1 && break
      sleep 0.5
    done
    ensure_roles
    if ! as_root runuser -u postgres -- psql -Atqc "select 1 from pg_database where datname = 'kith'" | grep -q 1; then
      as_root runuser -u postgres -- createdb -O kith kith
    fi
  fi
  # Roles made by an older version of these scripts lack what the tests need.
  if [ "$(psql "$url" -Atqc "select rolcreaterole from pg_roles where rolname = current_user")" != "t" ] ||
     ! psql "$url" -Atqc "select 1 from pg_roles where rolname = 'kith_app'" | grep -q 1; then
    ensure_roles
  fi
  export DATABASE_URL="$url"
}

# The owner (kith: migrates, creates test databases and the roles they use)
# and the server's own role (kith_app), made as PostgreSQL's superuser.
ensure_roles() {
  as_root runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qc "
  DO \$\$ BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kith') THEN
      CREATE ROLE kith LOGIN CREATEDB CREATEROLE PASSWORD 'kith';
    ELSE
      ALTER ROLE kith LOGIN CREATEDB CREATEROLE PASSWORD 'kith';
    END IF;
    -- The server's own role: it may only add to the audit log.
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kith_app') THEN
      CREATE ROLE kith_app LOGIN PASSWORD 'kith_app';
    END IF;
    GRANT kith_app TO kith;
  END \$\$;" >/dev/null
}

# The server connects as the application role (only INSERT and SELECT on the
# audit log) and migrates as the owner. Sets KITH_MIGRATION_URL to the
# owner's DATABASE_URL and DATABASE_URL to the same database as kith_app,
# when that role exists; otherwise leaves one role doing both, and says so.
use_application_role() {
  psql "$DATABASE_URL" -Atqc "select 1 from pg_roles where rolname = 'kith_app'" | grep -q 1 ||
    psql "$DATABASE_URL" -qc "CREATE ROLE kith_app LOGIN PASSWORD 'kith_app'" >/dev/null 2>&1 || true
  if psql "$DATABASE_URL" -Atqc "select 1 from pg_roles where rolname = 'kith_app'" | grep -q 1; then
    export KITH_MIGRATION_URL="$DATABASE_URL"
    export DATABASE_URL="$(printf '%s' "$DATABASE_URL" | sed -E 's#://[^@/]*@#://kith_app:kith_app@#')"
  else
    log "no kith_app role: the server will run as the owner role, which could rewrite the audit log"
  fi
}
