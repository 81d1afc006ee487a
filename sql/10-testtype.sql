-- The example table. Another table is the same three statements plus one
-- line in pbp-fcgi's --tables.
create table if not exists testtype (
  id bigserial primary key,
  val text not null,
  mtime timestamptz not null default clock_timestamp()
);
select pbp_watch('testtype');
