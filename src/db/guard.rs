//! One guarded transition: `UPDATE … WHERE id = $1 AND status = expected`,
//! and a 409 `concurrent_update` when no row matched because someone else
//! moved it first. Referrals, offers and sessions all change state this way.

/// Runs a guarded UPDATE on `$table` (row `$id`, whose `$status` must still be
/// `$from`) setting `$changes`, prepared once per connection. Evaluates to
/// `AppResult<()>`: a 409 `concurrent_update` naming `$what` when the row had
/// moved on.
#[macro_export]
macro_rules! guarded_update {
    ($conn:expr, $table:path, $id:expr, $status:path, $from:expr, $changes:expr, $what:expr) => {{
        use diesel::{ExpressionMethods as _, QueryDsl as _};
        use $crate::db::Reuse as _;
        let updated = diesel_async::RunQueryDsl::execute(
            diesel::update($table.find($id).filter($status.eq($from)))
                .set($changes)
                .reused(),
            $conn,
        )
        .await?;
        $crate::db::guard::moved(updated, $what)
    }};
}

/// `Ok` when the guarded UPDATE changed its row; the 409 otherwise.
pub fn moved(updated: usize, what: &str) -> crate::error::AppResult<()> {
    if updated == 0 {
        Err(crate::error::AppError::conflict(
            crate::error::Code::ConcurrentUpdate,
            format!("This {what} changed at the same moment. Reload it."),
        ))
    } else {
        Ok(())
    }
}
