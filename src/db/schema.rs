// @generated automatically by Diesel CLI.

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        actor_id -> Nullable<Uuid>,
        action -> Text,
        entity_type -> Text,
        entity_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        request_id -> Nullable<Text>,
        detail -> Jsonb,
    }
}

diesel::table! {
    audit_pending (entry_id) {
        entry_id -> Int8,
    }
}

diesel::table! {
    audit_chain (seq) {
        seq -> Int8,
        entry_id -> Int8,
        hash -> Bytea,
    }
}

diesel::table! {
    auth_sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        second_factor_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    email_verifications (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        email -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> Int8,
        to_address -> Text,
        subject -> Text,
        body -> Text,
        enqueued_at -> Timestamptz,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    group_sessions (id) {
        id -> Uuid,
        group_id -> Uuid,
        host_id -> Uuid,
        series_id -> Nullable<Uuid>,
        title -> Text,
        agenda -> Text,
        kind -> Text,
        starts_at -> Timestamptz,
        planned_minutes -> Int4,
        ends_at -> Timestamptz,
        status -> Text,
        started_at -> Nullable<Timestamptz>,
        ended_at -> Nullable<Timestamptz>,
        locked_at -> Nullable<Timestamptz>,
        signed_at -> Nullable<Timestamptz>,
        reminded_day_at -> Nullable<Timestamptz>,
        reminded_hour_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    group_invites (id) {
        id -> Uuid,
        group_id -> Uuid,
        kind -> Text,
        email -> Text,
        user_id -> Nullable<Uuid>,
        invited_by -> Nullable<Uuid>,
        status -> Text,
        created_at -> Timestamptz,
        responded_at -> Nullable<Timestamptz>,
        responded_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    group_members (group_id, user_id) {
        group_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        joined_at -> Timestamptz,
        muted_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    groups (id) {
        id -> Uuid,
        name -> Text,
        topic -> Text,
        description -> Text,
        listed -> Bool,
        created_by -> Uuid,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        last_message_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Int4,
        window_started_at -> Timestamptz,
        locked_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    messages (id) {
        id -> Int8,
        group_id -> Uuid,
        author_id -> Uuid,
        client_id -> Nullable<Text>,
        body -> Text,
        created_at -> Timestamptz,
        deleted_at -> Nullable<Timestamptz>,
        deleted_by -> Nullable<Uuid>,
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        user_id -> Uuid,
        kind -> Text,
        referral_id -> Nullable<Uuid>,
        message -> Text,
        created_at -> Timestamptz,
        read_at -> Nullable<Timestamptz>,
        group_id -> Nullable<Uuid>,
        session_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    password_resets (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    profiles (user_id) {
        user_id -> Uuid,
        credentials -> Array<Text>,
        license_states -> Array<Text>,
        license_number -> Nullable<Text>,
        verified_at -> Nullable<Timestamptz>,
        verified_by -> Nullable<Uuid>,
        verified_states -> Array<Text>,
        bio -> Text,
        specialties -> Array<Text>,
        modalities -> Array<Text>,
        populations -> Array<Text>,
        languages -> Array<Text>,
        insurance -> Array<Text>,
        fee_min -> Nullable<Int4>,
        fee_max -> Nullable<Int4>,
        sliding_scale -> Bool,
        telehealth -> Bool,
        in_person -> Bool,
        city -> Nullable<Text>,
        state -> Nullable<Text>,
        postal_code -> Nullable<Text>,
        latitude -> Nullable<Float8>,
        longitude -> Nullable<Float8>,
        accepting_referrals -> Bool,
        open_slots -> Int4,
        waitlist -> Text,
        capacity_confirmed_at -> Nullable<Timestamptz>,
        version -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    referral_contacts (referral_id) {
        referral_id -> Uuid,
        full_name -> Nullable<Text>,
        phone -> Nullable<Text>,
        email -> Nullable<Text>,
        preferred_contact -> Nullable<Text>,
        sealed -> Nullable<Bytea>,
        key_id -> Nullable<Text>,
        purged_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    referral_reads (referral_id, viewer_id) {
        referral_id -> Uuid,
        viewer_id -> Uuid,
        audited_at -> Timestamptz,
    }
}

diesel::table! {
    referral_events (id) {
        id -> Int8,
        referral_id -> Uuid,
        actor_id -> Nullable<Uuid>,
        from_status -> Nullable<Text>,
        to_status -> Text,
        at -> Timestamptz,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    referral_offers (id) {
        id -> Int8,
        referral_id -> Uuid,
        recipient_id -> Uuid,
        rank -> Int4,
        state -> Text,
        offered_at -> Nullable<Timestamptz>,
        deadline -> Nullable<Timestamptz>,
        responded_at -> Nullable<Timestamptz>,
        reason -> Nullable<Text>,
        note -> Nullable<Text>,
        reminded_at -> Nullable<Timestamptz>,
        closed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    referrals (id) {
        id -> Uuid,
        sender_id -> Uuid,
        mode -> Text,
        status -> Text,
        urgency -> Text,
        response_minutes -> Int4,
        age_band -> Text,
        client_state -> Text,
        concerns -> Array<Text>,
        modality -> Nullable<Text>,
        insurance -> Nullable<Text>,
        language -> Nullable<Text>,
        telehealth_ok -> Bool,
        latitude -> Nullable<Float8>,
        longitude -> Nullable<Float8>,
        note -> Text,
        accepted_by -> Nullable<Uuid>,
        accepted_onto -> Nullable<Text>,
        first_appointment_at -> Nullable<Timestamptz>,
        outcome -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        version -> Int4,
        checked_in_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        issued_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    room_instances (id) {
        id -> Uuid,
        started_at -> Timestamptz,
        heartbeat_at -> Timestamptz,
    }
}

diesel::table! {
    room_visits (id) {
        id -> Int8,
        instance_id -> Uuid,
        group_id -> Uuid,
        user_id -> Uuid,
        joined_at -> Timestamptz,
        left_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Uuid,
        code_hash -> Bytea,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    second_factors (user_id) {
        user_id -> Uuid,
        sealed_secret -> Bytea,
        created_at -> Timestamptz,
        confirmed_at -> Nullable<Timestamptz>,
        last_step -> Nullable<Int8>,
    }
}

diesel::table! {
    sign_in_challenges (token_hash) {
        token_hash -> Bytea,
        user_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        failures -> Int4,
    }
}

diesel::table! {
    search_outbox (id) {
        id -> Int8,
        user_id -> Uuid,
        enqueued_at -> Timestamptz,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    session_attendance (session_id, user_id) {
        session_id -> Uuid,
        user_id -> Uuid,
        stays -> Jsonb,
        measured_minutes -> Int4,
        minutes -> Int4,
        kind -> Text,
        adjusted_reason -> Nullable<Text>,
        adjusted_at -> Nullable<Timestamptz>,
        signed_at -> Nullable<Timestamptz>,
        signed_by -> Nullable<Uuid>,
        signer_name -> Nullable<Text>,
        signer_license -> Nullable<Text>,
        answer -> Nullable<Text>,
        answered_at -> Nullable<Timestamptz>,
        answer_note -> Nullable<Text>,
    }
}

diesel::table! {
    taxonomy_terms (kind, slug) {
        kind -> Text,
        slug -> Text,
        label -> Text,
        synonyms -> Array<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        password_hash -> Text,
        display_name -> Text,
        role -> Text,
        email_verified_at -> Nullable<Timestamptz>,
        disabled_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        time_zone -> Text,
    }
}

diesel::table! {
    worker_state (key) {
        key -> Text,
        value -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    ws_tickets (ticket_hash) {
        ticket_hash -> Bytea,
        user_id -> Uuid,
        session_id -> Uuid,
        group_id -> Nullable<Uuid>,
        expires_at -> Timestamptz,
    }
}

diesel::joinable!(auth_sessions -> users (user_id));
diesel::joinable!(group_invites -> groups (group_id));
diesel::joinable!(group_sessions -> groups (group_id));
diesel::joinable!(group_sessions -> users (host_id));
diesel::joinable!(group_members -> groups (group_id));
diesel::joinable!(group_members -> users (user_id));
diesel::joinable!(groups -> users (created_by));
diesel::joinable!(messages -> groups (group_id));
diesel::joinable!(messages -> users (author_id));
diesel::joinable!(notifications -> groups (group_id));
diesel::joinable!(notifications -> referrals (referral_id));
diesel::joinable!(notifications -> users (user_id));
diesel::joinable!(email_verifications -> users (user_id));
diesel::joinable!(password_resets -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(second_factors -> users (user_id));
diesel::joinable!(sign_in_challenges -> users (user_id));
diesel::joinable!(referral_contacts -> referrals (referral_id));
diesel::joinable!(referral_reads -> referrals (referral_id));
diesel::joinable!(audit_chain -> audit_log (entry_id));
diesel::joinable!(referral_events -> referrals (referral_id));
diesel::joinable!(referral_events -> users (actor_id));
diesel::joinable!(referral_offers -> referrals (referral_id));
diesel::joinable!(referral_offers -> users (recipient_id));
diesel::joinable!(refresh_tokens -> auth_sessions (session_id));
diesel::joinable!(room_visits -> groups (group_id));
diesel::joinable!(session_attendance -> group_sessions (session_id));
diesel::joinable!(room_visits -> users (user_id));
diesel::joinable!(ws_tickets -> groups (group_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_chain,
    audit_log,
    audit_pending,
    auth_sessions,
    email_outbox,
    email_verifications,
    group_invites,
    group_members,
    group_sessions,
    groups,
    login_throttle,
    messages,
    notifications,
    password_resets,
    profiles,
    referral_contacts,
    referral_events,
    referral_offers,
    referral_reads,
    referrals,
    recovery_codes,
    refresh_tokens,
    room_instances,
    room_visits,
    search_outbox,
    second_factors,
    session_attendance,
    sign_in_challenges,
    taxonomy_terms,
    users,
    worker_state,
    ws_tickets,
);
