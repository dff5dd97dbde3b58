//! The versioned JSON API: every feature's routes, mounted once under `/api/v1`.

use crate::{accounts, audit, groups, notify, profiles, referrals, rooms, search};

/// The versioned JSON API; its routes and their OpenAPI entries come from one list.
/// Its answers carry personal data, so no cache may keep them unless a route
/// says otherwise (the public taxonomy does).
pub fn api_v1(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(
        utoipa_actix_web::scope("/api/v1")
            .wrap(actix_web::middleware::DefaultHeaders::new().add(("Cache-Control", "no-store")))
            .configure(accounts::routes)
            .configure(profiles::routes)
            .configure(search::routes)
            .configure(referrals::routes)
            .configure(notify::routes)
            .configure(groups::routes)
            .configure(rooms::routes)
            .configure(audit::routes),
    );
}
