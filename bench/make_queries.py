#!/usr/bin/env python3
"""Writes N realistic search queries twice: as Kith URLs (for wrk) and as the
naive PostgreSQL query a directory would run (ILIKE plus the same filters),
one pgbench script per query. Deterministic for a given seed."""
import math, random, sys, os

n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(7)
words = ["anxiety", "traumma", "ptsd", "grief", "emdr", "couples", "depresion", "ocd", "adhd", "eating",
         "postpartum", "insomnia", "dbt", "family", "addiction", "bipolar", "panic", "teen", "anger", "stress"]
insurance = ["aetna", "bcbs", "cigna", "unitedhealthcare", "medicaid", "medicare", "optum", "kaiser"]
languages = ["spanish", "english"]
states = ["NY", "CA", "TX", "FL", "IL", "MA", "PA", "WA", "GA", "NC"]
modalities = ["cbt", "emdr", "dbt", "act", "psychodynamic"]
cities = [(40.7128, -74.0060), (34.0522, -118.2437), (41.8781, -87.6298), (29.7604, -95.3698),
          (47.6062, -122.3321), (42.3601, -71.0589), (25.7617, -80.1918), (39.9526, -75.1652)]

os.makedirs(f"{out}/sql", exist_ok=True)
with open(f"{out}/urls", "w") as urls:
    for i in range(n):
        word = rng.choice(words)
        params, where = [f"q={word}"], []
        like = f"'%{word}%'"
        where.append(f"(u.display_name ILIKE {like} OR p.bio ILIKE {like} OR array_to_string(p.specialties, ' ') ILIKE {like} "
                     f"OR array_to_string(p.modalities, ' ') ILIKE {like})")
        filters = rng.sample(["insurance", "language", "licensed_in", "telehealth", "accepting", "max_wait", "fee_max", "modality"],
                             rng.randint(2, 4))
        for f in filters:
            if f == "insurance":
                v = rng.choice(insurance); params.append(f"insurance={v}"); where.append(f"p.insurance && ARRAY['{v}']")
            elif f == "language":
                v = rng.choice(languages); params.append(f"language={v}"); where.append(f"p.languages && ARRAY['{v}']")
            elif f == "licensed_in":
                v = rng.choice(states); params.append(f"licensed_in={v}"); where.append(f"'{v}' = ANY(p.license_states)")
            elif f == "telehealth":
                params.append("telehealth=true"); where.append("p.telehealth")
            elif f == "accepting":
                params.append("accepting=true"); where.append("p.accepting_referrals")
            elif f == "max_wait":
                params.append("max_wait=short"); where.append("p.waitlist IN ('none', 'short')")
            elif f == "fee_max":
                params.append("fee_max=150"); where.append("coalesce(p.fee_min, 0) <= 150")
            elif f == "modality":
                v = rng.choice(modalities); params.append(f"modality={v}"); where.append(f"p.modalities && ARRAY['{v}']")
        order = "CASE WHEN NOT p.accepting_referrals THEN 5 WHEN p.capacity_confirmed_at IS NULL " \
                "OR p.capacity_confirmed_at < now() - interval '14 days' THEN 4 WHEN p.open_slots > 0 THEN 0 " \
                "WHEN p.waitlist = 'long' THEN 3 WHEN p.waitlist = 'medium' THEN 2 ELSE 1 END"
        if i % 2 == 0:
            lat, lng = rng.choice(cities)
            radius = rng.choice([25, 50, 100])
            params += [f"near={lat},{lng}", f"radius_km={radius}"]
            dist = (f"(12742 * asin(sqrt(power(sin(radians(p.latitude - {lat}) / 2), 2) + cos(radians({lat})) * "
                    f"cos(radians(p.latitude)) * power(sin(radians(p.longitude - ({lng})) / 2), 2))))")
            where.append(f"{dist} <= {radius}")
            order += f", {dist}"
        urls.write("/api/v1/search/clinicians?" + "&".join(params) + "\n")
        with open(f"{out}/sql/q{i}.sql", "w") as sql:
            sql.write("SELECT p.user_id, count(*) OVER () FROM profiles p JOIN users u ON u.id = p.user_id "
                      "WHERE u.disabled_at IS NULL AND " + " AND ".join(where) + f" ORDER BY {order} LIMIT 20;\n")
