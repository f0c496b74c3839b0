-- Citizens ask who read their records: audit entries by subject.
CREATE INDEX audit_log_by_subject ON audit_log (subject, seq);
