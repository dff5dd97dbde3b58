//! The clinical vocabulary (specialties, modalities, populations, languages,
//! insurance), loaded once from `taxonomy_terms` and used to check profiles.

use std::collections::{BTreeMap, HashSet};

use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{db::schema::taxonomy_terms, error::AppError};

/// Declares the schema of one kind's slugs. The served document lists the
/// installed vocabulary's slugs (`openapi::with_taxonomy`); the server takes
/// them in any case, with spaces around.
macro_rules! slug_schemas {
    ($($name:ident: $what:literal),+ $(,)?) => {$(
        #[doc = concat!("A ", $what, " slug from `GET /api/v1/taxonomy`.")]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("A ", $what, " slug from `GET /api/v1/taxonomy`.")))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
    )+};
}

slug_schemas! {
    SpecialtySlug: "specialty",
    ModalitySlug: "modality",
    PopulationSlug: "population",
    LanguageSlug: "language",
    InsuranceSlug: "insurance",
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Specialty,
    Modality,
    Population,
    Language,
    Insurance,
}

impl Kind {
    /// The name of the schema the OpenAPI document lists this kind's slugs in.
    pub fn schema_name(self) -> &'static str {
        match self {
            Kind::Specialty => "SpecialtySlug",
            Kind::Modality => "ModalitySlug",
            Kind::Population => "PopulationSlug",
            Kind::Language => "LanguageSlug",
            Kind::Insurance => "InsuranceSlug",
        }
    }

    pub const ALL: [Kind; 5] = [
        Kind::Specialty,
        Kind::Modality,
        Kind::Population,
        Kind::Language,
        Kind::Insurance,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Specialty => "specialty",
            Kind::Modality => "modality",
            Kind::Population => "population",
            Kind::Language => "language",
            Kind::Insurance => "insurance",
        }
    }

    /// The profile field that holds terms of this kind.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Specialty => "specialties",
            Kind::Modality => "modalities",
            Kind::Population => "populations",
            Kind::Language => "languages",
            Kind::Insurance => "insurance",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Queryable, Serialize, Deserialize, ToSchema)]
pub struct Term {
    pub slug: String,
    pub label: String,
    pub synonyms: Vec<String>,
}

/// The whole vocabulary, grouped by profile field.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct TaxonomyDoc {
    pub specialties: Vec<Term>,
    pub modalities: Vec<Term>,
    pub populations: Vec<Term>,
    pub languages: Vec<Term>,
    pub insurance: Vec<Term>,
}

#[derive(Debug, Default)]
pub struct Taxonomy {
    terms: BTreeMap<Kind, Vec<Term>>,
    slugs: HashSet<(Kind, String)>,
}

impl Taxonomy {
    pub async fn load(conn: &mut AsyncPgConnection) -> QueryResult<Self> {
        let rows: Vec<(String, String, String, Vec<String>)> = taxonomy_terms::table
            .order((taxonomy_terms::kind, taxonomy_terms::label))
            .select((
                taxonomy_terms::kind,
                taxonomy_terms::slug,
                taxonomy_terms::label,
                taxonomy_terms::synonyms,
            ))
            .load(conn)
            .await?;
        let mut taxonomy = Taxonomy::default();
        for (kind, slug, label, synonyms) in rows {
            // The table's CHECK allows only known kinds; anything else is a broken database.
            let kind = Kind::parse(&kind).ok_or_else(|| {
                diesel::result::Error::DeserializationError(
                    format!("unknown taxonomy kind `{kind}`").into(),
                )
            })?;
            taxonomy.slugs.insert((kind, slug.clone()));
            taxonomy.terms.entry(kind).or_default().push(Term {
                slug,
                label,
                synonyms,
            });
        }
        Ok(taxonomy)
    }

    pub fn terms(&self, kind: Kind) -> &[Term] {
        self.terms.get(&kind).map_or(&[], Vec::as_slice)
    }

    pub fn contains(&self, kind: Kind, slug: &str) -> bool {
        self.slugs.contains(&(kind, slug.to_string()))
    }

    /// Checks and de-duplicates a list of slugs for one field (order kept).
    pub fn check(&self, kind: Kind, slugs: Vec<String>) -> Result<Vec<String>, AppError> {
        const MAX: usize = 40;
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(slugs.len());
        for slug in slugs {
            let slug = slug.trim().to_lowercase();
            if !self.contains(kind, &slug) {
                return Err(AppError::invalid_field(
                    kind.field(),
                    format!(
                        "Unknown {} `{slug}`; see GET /api/v1/taxonomy for the valid values.",
                        kind.as_str()
                    ),
                ));
            }
            if seen.insert(slug.clone()) {
                out.push(slug);
            }
        }
        if out.len() > MAX {
            return Err(AppError::invalid_field(
                kind.field(),
                format!("Choose at most {MAX}."),
            ));
        }
        Ok(out)
    }

    pub fn document(&self) -> TaxonomyDoc {
        let get = |k| self.terms(k).to_vec();
        TaxonomyDoc {
            specialties: get(Kind::Specialty),
            modalities: get(Kind::Modality),
            populations: get(Kind::Population),
            languages: get(Kind::Language),
            insurance: get(Kind::Insurance),
        }
    }
}
