DROP VIEW clinician_responsiveness;
