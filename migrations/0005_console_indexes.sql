-- The console's user picker searches 1,000,000 users by email prefix: an
-- index usable by LIKE 'prefix%' whatever the database collation.
CREATE INDEX users_email_prefix ON users (lower(email) text_pattern_ops);
