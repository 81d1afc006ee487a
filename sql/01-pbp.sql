-- PBP's machinery, shared by every watched table. Idempotent: safe to run again.

-- Table-level granularity: bumped once per statement. Stored as one row per
-- table and writer shard (the backend's pid modulo 64): with a single row per
-- table, every concurrent writer queued on that row's lock until the one ahead
-- had committed, which halved insert throughput at 16 connections. Each shard
-- only moves forward, so any committed write changes the table's `version`.
create table if not exists table_mtime_shards (
  name text not null,
  shard smallint not null,
  mtime timestamptz not null default clock_timestamp(),
  primary key (name, shard)
);

-- Earlier versions kept one row per table in a table named table_mtime.
do $$
begin
  if exists (select from pg_class where oid = to_regclass('public.table_mtime') and relkind = 'r') then
    insert into table_mtime_shards (name, shard, mtime) select name, 0, mtime from table_mtime
    on conflict do nothing;
    drop table table_mtime;
  end if;
end $$;

-- What collection reads use: when the table last changed (Last-Modified), and
-- a number that grows with every committed write (the ETag).
create or replace view table_mtime as
select name,
       max(mtime) as mtime,
       sum((extract(epoch from mtime) * 1000000)::bigint)::numeric as version
from table_mtime_shards
group by name;

-- Row-level granularity: clock_timestamp(), not now(), so that a row's mtime
-- moves forward even when overlapping transactions touch it.
create or replace function pbp_set_mtime() returns trigger
language plpgsql as $$
begin
  new.mtime := clock_timestamp();
  return new;
end $$;

-- SECURITY DEFINER: the application role may write the watched tables
-- without being allowed to write table_mtime directly. An upsert, because two
-- concurrent first writers must both succeed; strictly later than the shard's
-- last value even if the clock stepped back.
create or replace function pbp_touch_table() returns trigger
language plpgsql security definer set search_path = pg_catalog, public as $$
begin
  insert into public.table_mtime_shards as m (name, shard, mtime)
  values (tg_table_name, pg_backend_pid() % 64, clock_timestamp())
  on conflict (name, shard) do update set mtime = greatest(excluded.mtime, m.mtime + interval '1 microsecond');
  return null;
end $$;

-- One notification per changed row on channel 'pbp'. pg_notify refuses
-- payloads of 8000 bytes or more, and a failing trigger would fail the
-- writer's transaction: a row too large is sent as its key only, marked
-- truncated, and the client fetches it.
create or replace function pbp_notify() returns trigger
language plpgsql as $$
declare
  key_column text := tg_argv[0];
  key_value jsonb;
  stamp timestamptz;
  payload text;
begin
  if tg_op = 'DELETE' then
    key_value := to_jsonb(old) -> key_column;
    stamp := clock_timestamp();
  else
    key_value := to_jsonb(new) -> key_column;
    stamp := new.mtime;
  end if;
  payload := json_build_object(
    'table', tg_table_name,
    'op', lower(tg_op),
    'key', key_value,
    'mtime', stamp,
    'new', case when tg_op = 'DELETE' then null else to_json(new) end,
    'old', case when tg_op = 'INSERT' then null else to_json(old) end
  )::text;
  if octet_length(payload) >= 8000 then
    -- An update that changed the key: the truncated event names only the new
    -- key, so a client could never drop the row under the old one. Say first
    -- that the old key's row is gone (a delete reaches every watcher of it).
    if tg_op = 'UPDATE' and (to_jsonb(old) -> key_column) is distinct from key_value then
      perform pg_notify('pbp', json_build_object(
        'table', tg_table_name,
        'op', 'delete',
        'key', to_jsonb(old) -> key_column,
        'mtime', stamp,
        'truncated', true
      )::text);
    end if;
    payload := json_build_object(
      'table', tg_table_name,
      'op', lower(tg_op),
      'key', key_value,
      'mtime', stamp,
      'truncated', true
    )::text;
  end if;
  perform pg_notify('pbp', payload);
  return null;
end $$;

-- TRUNCATE fires no row triggers: one event says the table is now empty.
create or replace function pbp_notify_truncate() returns trigger
language plpgsql as $$
begin
  perform pg_notify('pbp', json_build_object(
    'table', tg_table_name, 'op', 'truncate', 'key', null, 'mtime', clock_timestamp())::text);
  return null;
end $$;

-- Makes a table watched: mtime column maintained, table_mtime bumped, every
-- row change notified. The table needs a single-column primary key and an
-- `mtime timestamptz` column. Calling it again changes nothing.
create or replace function pbp_watch(target regclass) returns void
language plpgsql as $$
declare
  key_column text;
  table_name text := (select relname from pg_class where oid = target);
begin
  select a.attname into key_column
  from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
  where i.indrelid = target and i.indisprimary and i.indnkeyatts = 1;
  if key_column is null then
    raise exception 'pbp_watch: % needs a single-column primary key', target;
  end if;
  execute format('create index if not exists %I on %s (mtime)', table_name || '_mtime_idx', target);
  execute format('drop trigger if exists pbp_set_mtime on %s', target);
  execute format('create trigger pbp_set_mtime before insert or update on %s
                  for each row execute function pbp_set_mtime()', target);
  execute format('drop trigger if exists pbp_touch_table on %s', target);
  execute format('create trigger pbp_touch_table after insert or update or delete or truncate on %s
                  for each statement execute function pbp_touch_table()', target);
  execute format('drop trigger if exists pbp_notify on %s', target);
  execute format('create trigger pbp_notify after insert or update or delete on %s
                  for each row execute function pbp_notify(%L)', target, key_column);
  execute format('drop trigger if exists pbp_notify_truncate on %s', target);
  execute format('create trigger pbp_notify_truncate after truncate on %s
                  for each statement execute function pbp_notify_truncate()', target);
  insert into table_mtime_shards (name, shard) values (table_name, 0) on conflict do nothing;
end $$;
