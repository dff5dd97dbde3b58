//! Two database roles: the owner, which migrates, and the application's
//! role, which may read and write the business tables but only INSERT and
//! SELECT on the audit log and its chain. With the application's role, a
//! stolen connection can add audit entries but never change or remove one.

use diesel::sql_types::{Bool, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// The application role `scripts/run`, `scripts/test` and docker-compose create.
pub const APPLICATION_ROLE: &str = "kith_app";

/// The audit tables: the application may add to them and read them, nothing else.
const AUDIT_TABLES: &str = "audit_log, audit_chain";

/// Gives `role` what the application needs on a migrated database, and no
/// more on the audit tables. Idempotent; run after every migration.
pub async fn grant_application(
    conn: &mut AsyncPgConnection,
    role: &str,
) -> diesel::QueryResult<()> {
    let role = quoted(role);
    conn.batch_execute(&format!(
        "GRANT USAGE ON SCHEMA public TO {role};
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role};
         GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {role};
         REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {AUDIT_TABLES} FROM {role};
         REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON __diesel_schema_migrations FROM {role};"
    ))
    .await
}

/// Whether a role of that name exists.
pub async fn exists(conn: &mut AsyncPgConnection, role: &str) -> diesel::QueryResult<bool> {
    diesel::select(
        diesel::dsl::sql::<Bool>("EXISTS (SELECT FROM pg_roles WHERE rolname = ")
            .bind::<Text, _>(role)
            .sql(")"),
    )
    .get_result(conn)
    .await
}

/// Whether the connected role could rewrite the audit log: it owns it, is
/// a superuser, or holds UPDATE, DELETE or TRUNCATE on an audit table.
pub async fn can_rewrite_audit(conn: &mut AsyncPgConnection) -> diesel::QueryResult<bool> {
    diesel::select(diesel::dsl::sql::<Bool>(
        "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
         OR pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = 'audit_log'::regclass), 'USAGE')
         OR has_table_privilege('audit_log', 'UPDATE') OR has_table_privilege('audit_log', 'DELETE')
         OR has_table_privilege('audit_log', 'TRUNCATE')
         OR has_table_privilege('audit_chain', 'UPDATE') OR has_table_privilege('audit_chain', 'DELETE')
         OR has_table_privilege('audit_chain', 'TRUNCATE')",
    ))
    .get_result(conn)
    .await
}

/// Says so at start-up when the server's own role could rewrite the audit
/// log: the chain still shows any rewrite, but the roles should not allow it.
pub async fn warn_if_audit_is_writable(conn: &mut AsyncPgConnection) -> diesel::QueryResult<()> {
    if can_rewrite_audit(conn).await? {
        tracing::warn!(
            "the database role in DATABASE_URL owns or may rewrite the audit log; \
             run the server as a role with only INSERT and SELECT on it (see README: database roles)"
        );
    }
    Ok(())
}

fn quoted(role: &str) -> String {
    format!("\"{}\"", role.replace('"', "\"\""))
}
