DROP TABLE taxonomy_terms;
