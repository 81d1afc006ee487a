-- An example table with a row rule: each note is its owner's, the token's
-- `sub`. PostgreSQL's row security (the policy pbp_watch() makes from the
-- rule) decides what each request may read and write, and pbp-fcgi judges
-- the table's events by the same rule. Who may use it at all: sql/90-roles.sql
-- (signed-in users, not anonymous). A new note is the writer's without naming
-- its owner; naming another owner is refused.
create table if not exists notes (
  id bigserial primary key,
  owner text not null default (nullif(current_setting('request.jwt.claims', true), '')::json ->> 'sub'),
  body text not null,
  mtime timestamptz not null default clock_timestamp()
);
select pbp_watch('notes', owner_column => 'owner', owner_claim => 'sub');
