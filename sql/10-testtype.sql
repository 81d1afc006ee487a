-- The example table. Another table is the same: a table with a single-column
-- primary key and an mtime column, and pbp_watch() (sql/20-todo.sql is another).
create table if not exists testtype (
  id bigserial primary key,
  val text not null,
  mtime timestamptz not null default clock_timestamp()
);
select pbp_watch('testtype');
