-- PBP's machinery, shared by every watched table. Idempotent: safe to run again.
-- Owned by the role that applies it (sql/migrate.sh); only PBP's own
-- functions, defined here, touch what lives in schema pbp_private.

create schema if not exists pbp_private;
revoke all on schema pbp_private from public;

-- The NOTIFY channel of the triggers. PostgreSQL has no privilege on NOTIFY
-- or LISTEN: anyone who may connect can send any payload on any channel. So
-- the channel's name is the secret: random, kept in this table that nobody
-- else may read, read by the (SECURITY DEFINER) triggers and by pbp-notifyd
-- through pbp_stream_channel(), which only its role may execute. Never in a
-- function's text: pg_proc.prosrc is readable by everyone.
create table if not exists pbp_private.stream (
  only_row boolean primary key default true check (only_row),
  channel text not null
);
revoke all on pbp_private.stream from public;
-- gen_random_uuid() draws from the server's strong random source: 122 bits.
insert into pbp_private.stream (channel)
values ('pbp_' || replace(gen_random_uuid()::text, '-', ''))
on conflict do nothing;

create or replace function public.pbp_stream_channel() returns text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select channel from pbp_private.stream
$$;

-- Where the triggers send events (issue 16): 'notify', pg_notify on the
-- channel above (what pbp-notifyd --source notify LISTENs to), or 'wal', a
-- transactional logical decoding message with the prefix 'pbp' (what
-- pbp-notifyd --source wal reads from its replication slot). Data, not a
-- setting: a session cannot SET it away from what notifyd reads, and a
-- switch takes effect at its commit for every writer at once. The triggers
-- read it with the channel, in the one lookup they already made.
alter table pbp_private.stream add column if not exists source text not null default 'notify';
do $$
begin
  if not exists (select from pg_constraint where conrelid = 'pbp_private.stream'::regclass
                 and conname = 'stream_source_known') then
    alter table pbp_private.stream add constraint stream_source_known check (source in ('notify', 'wal'));
  end if;
end $$;

-- For pbp-notifyd, to refuse to run a source the database does not send.
create or replace function public.pbp_change_source() returns text
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select source from pbp_private.stream
$$;

-- For PBP's owner (EXECUTE is revoked from PUBLIC below). 'wal' needs
-- wal_level = logical: below it the messages are written but no slot can
-- decode them, so every event would be lost without a word. Switching a
-- running site resets its clients once: notifyd must be restarted with the
-- matching --source, and the new source's stream starts a new epoch.
create or replace function public.pbp_set_change_source(new_source text) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
begin
  if new_source is null or new_source not in ('notify', 'wal') then
    raise exception 'pbp_set_change_source: the change source is ''notify'' or ''wal'', not %',
      coalesce(quote_literal(new_source), 'null')
      using errcode = 'invalid_parameter_value';
  end if;
  if new_source = 'wal' and current_setting('wal_level') <> 'logical' then
    raise exception 'pbp_set_change_source: the wal source needs wal_level = logical (it is %): set it in postgresql.conf and restart PostgreSQL',
      current_setting('wal_level')
      using errcode = 'object_not_in_prerequisite_state';
  end if;
  update pbp_private.stream set source = new_source;
end $$;

-- Events leave through here (pbp_notify, paid per row, has the same two
-- branches inline), so that the switch between the sources is in one place. SECURITY DEFINER and owned by PBP's owner: it alone (with
-- superusers) may call pg_logical_emit_message, which PostgreSQL lets
-- PUBLIC execute; any role that could would forge events that every client
-- of the wal source receives. So EXECUTE on it is revoked from PUBLIC, every
-- variant (text and bytea on PostgreSQL 15, and the `flush` one of 17).
-- NOTIFY cannot be revoked: the notify source's defence is the secret channel.
-- No SET search_path, unlike PBP's other SECURITY DEFINER functions: a SET
-- clause is applied and undone at every call, once more for every row
-- written, on top of the trigger's own (measured in the backend's CPU time
-- per inserted row, median of 6 noisy runs: 54 µs with it, 49 without).
-- Instead every name in it is
-- schema-qualified, the operator too, so that no caller's search path can
-- change what it runs; and only the triggers and PBP's owner may call it.
create or replace function pbp_private.emit_event(source text, channel text, payload text) returns void
language plpgsql security definer as $$
begin
  if source operator(pg_catalog.=) 'wal' then
    perform pg_catalog.pg_logical_emit_message(true, 'pbp', payload);
  else
    perform pg_catalog.pg_notify(channel, payload);
  end if;
end $$;
revoke all on function pbp_private.emit_event(text, text, text) from public;
do $$
declare
  variant regprocedure;
begin
  for variant in select p.oid from pg_proc p
                 where p.proname = 'pg_logical_emit_message' and p.pronamespace = 'pg_catalog'::regnamespace loop
    execute format('revoke execute on function %s from public', variant);
  end loop;
end $$;

-- Table-level granularity, without a row that writers wait for (one row per
-- table serialised writers, and two transactions writing two tables in
-- opposite orders deadlocked on it). Each table has 16 counter rows in
-- table_stamp_base; a READ COMMITTED transaction's first write statement
-- takes one that no other transaction holds (SKIP LOCKED: nobody ever
-- waits), counts itself in it and holds it to its commit. Counting once per
-- transaction, not per statement, keeps a loop of a million statements from
-- growing the row's version chain a million times. A writer that finds all
-- 16 held, or whose isolation level forbids locking a row another writer
-- changed since its snapshot (REPEATABLE READ, SERIALIZABLE), appends a row
-- to table_stamp_log instead, which nobody else ever locks, and a later
-- writer folds the log rows it can lock at once into the counter it holds.
-- The table's `version` is the number of writing transactions committed
-- (plus what an earlier stamp counted): a fold moves counts without changing
-- the sum, so `version` grows with every committed write and only then.
--
-- The counters are updated in place (HOT, in pages kept mostly empty), so
-- the table stays a few pages that reads and writes scan at once. The log
-- before (a row inserted per statement, deleted by the next fold) left
-- megabytes of dead rows between vacuums that every fold and every
-- collection read scanned: under pgbench, a fold took 1 ms.
create table if not exists pbp_private.table_stamp_base (
  name text not null,
  slot smallint not null,
  writes bigint not null default 0,
  mtime timestamptz not null default '-infinity',
  primary key (name, slot)
);
create table if not exists pbp_private.table_stamp_log (
  name text not null,
  id bigint generated always as identity,
  mtime timestamptz not null default clock_timestamp(),
  primary key (name, id)
);
revoke all on pbp_private.table_stamp_base, pbp_private.table_stamp_log from public;
alter table pbp_private.table_stamp_base set (fillfactor = 10);
-- Every watched table has its 16 counters (pbp_watch() gave 4 before).
insert into pbp_private.table_stamp_base (name, slot)
select b.name, slot from (select distinct name from pbp_private.table_stamp_base) b, generate_series(0, 15) slot
on conflict do nothing;

-- Earlier versions kept one row per table (table_mtime, a table) and then one
-- per table and pid % 64 (table_mtime_shards), whose version was the sum of
-- the rows' mtimes in microseconds: that sum is where the count goes on, so
-- that no ETag given before the upgrade can name a later state.
do $$
begin
  if exists (select from pg_class where oid = to_regclass('public.table_mtime') and relkind = 'r') then
    insert into pbp_private.table_stamp_base (name, slot, writes, mtime)
    select name, 0, (extract(epoch from mtime) * 1000000)::bigint, mtime from public.table_mtime
    on conflict do nothing;
    drop table public.table_mtime;
  end if;
  if to_regclass('public.table_mtime_shards') is not null then
    insert into pbp_private.table_stamp_base (name, slot, writes, mtime)
    select name, 0, sum((extract(epoch from mtime) * 1000000)::bigint), max(mtime)
    from public.table_mtime_shards group by name
    on conflict do nothing;
  end if;
end $$;

-- What collection reads use: when the table last changed (Last-Modified), and
-- a number that grows with every committed write (the ETag).
create or replace view table_mtime as
select name, max(mtime) as mtime, sum(writes)::numeric as version
from (select name, mtime, writes from pbp_private.table_stamp_base
      union all
      select name, mtime, 1 from pbp_private.table_stamp_log) stamps
group by name;

-- Moves the log rows of `target` that no other fold holds into a base row
-- that no other fold holds; does nothing when every base row is held.
create or replace function pbp_private.fold_stamps(target text) returns void
language plpgsql set search_path = pg_catalog, pg_temp as $$
declare
  base_slot smallint;
  folded bigint;
  newest timestamptz;
begin
  select slot into base_slot from pbp_private.table_stamp_base
  where name = target order by slot for update skip locked limit 1;
  if not found then
    return;
  end if;
  with taken as (
    delete from pbp_private.table_stamp_log
    where ctid = any (array(select ctid from pbp_private.table_stamp_log
                            where name = target for update skip locked))
    returning mtime
  )
  select count(*), max(mtime) into folded, newest from taken;
  if folded > 0 then
    update pbp_private.table_stamp_base
    set writes = writes + folded, mtime = greatest(mtime, newest)
    where name = target and slot = base_slot;
  end if;
end $$;
revoke all on function pbp_private.fold_stamps(text) from public;

-- Row-level granularity: clock_timestamp(), not now(), so that a row's mtime
-- moves forward even when overlapping transactions touch it; and an update is
-- always later than the row's previous mtime, even after the clock stepped
-- back (NTP, a restored VM), so that whoever orders a row's versions by mtime
-- never takes the newest for an old one.
create or replace function pbp_set_mtime() returns trigger
language plpgsql as $$
begin
  if tg_op = 'UPDATE' then
    new.mtime := greatest(clock_timestamp(), old.mtime + interval '1 microsecond');
  else
    new.mtime := clock_timestamp();
  end if;
  return new;
end $$;

-- SECURITY DEFINER: the writers may not write the stamps directly. No SET
-- search_path, for its cost on every write statement (see emit_event): every
-- name is schema-qualified, types and operators too.
--
-- Whether this transaction has counted itself already is kept in a setting
-- local to the transaction, pbp.stamped_<table oid>: the ctid of the row it
-- counted in. Any session may set that setting, so it is believed only when
-- that row is this table's and this transaction wrote it (its xmin), which
-- only this trigger can have done: a forged one counts the write anyway. (In
-- a subtransaction the row's xmin is the subtransaction's: the write is
-- counted once more, which only makes the version grow faster.)
--
-- A REPEATABLE READ writer folds now and then, in a subtransaction: locking a
-- row that a fold changed since its snapshot fails, and that fold is given
-- up. A SERIALIZABLE one only appends: a fold's reads would make its commit
-- depend on other writers' (the log then waits for a writer of another
-- isolation level to fold it).
create or replace function pbp_touch_table() returns trigger
language plpgsql security definer as $$
declare
  marker_name pg_catalog.text := 'pbp.stamped_' operator(pg_catalog.||) tg_relid::pg_catalog.text;
  marker pg_catalog.text := pg_catalog.current_setting(marker_name, true);
  table_name pg_catalog.text := tg_table_name::pg_catalog.text;
  isolation pg_catalog.text;
  counted pg_catalog.tid;
  -- The log row's id, or the counter's count.
  log_id pg_catalog.int8;
begin
  if marker operator(pg_catalog.<>) '' then
    if exists (select from pbp_private.table_stamp_base b
               where b.ctid operator(pg_catalog.=) marker::pg_catalog.tid
                 and b.name operator(pg_catalog.=) table_name
                 and b.xmin operator(pg_catalog.=) pg_catalog.xid(pg_catalog.pg_current_xact_id()))
       or exists (select from pbp_private.table_stamp_log l
                  where l.ctid operator(pg_catalog.=) marker::pg_catalog.tid
                    and l.name operator(pg_catalog.=) table_name
                    and l.xmin operator(pg_catalog.=) pg_catalog.xid(pg_catalog.pg_current_xact_id())) then
      return null;
    end if;
  end if;
  isolation := pg_catalog.current_setting('transaction_isolation');
  if isolation operator(pg_catalog.=) 'read committed' then
    update pbp_private.table_stamp_base
    set writes = writes operator(pg_catalog.+) 1, mtime = greatest(mtime, pg_catalog.clock_timestamp())
    where ctid operator(pg_catalog.=) (select b.ctid from pbp_private.table_stamp_base b
                                       where b.name operator(pg_catalog.=) table_name
                                       order by b.slot limit 1 for update skip locked)
    returning ctid, writes into counted, log_id;
  end if;
  if counted is null then
    insert into pbp_private.table_stamp_log (name) values (table_name) returning ctid, id into counted, log_id;
    if isolation operator(pg_catalog.=) 'repeatable read' and log_id operator(pg_catalog.%) 16 operator(pg_catalog.=) 0 then
      begin
        perform pbp_private.fold_stamps(table_name);
      exception when serialization_failure then
        null;
      end;
    end if;
  elsif log_id operator(pg_catalog.%) 16 operator(pg_catalog.=) 0 then
    -- Now and then, what writers appended is folded into the counter held.
    perform pbp_private.fold_stamps(table_name);
  end if;
  perform pg_catalog.set_config(marker_name, counted::pg_catalog.text, true);
  return null;
end $$;

-- After the view and the trigger no longer use it.
drop table if exists public.table_mtime_shards;

-- The payload of an event that names its row's key only: the row is too
-- large for a NOTIFY, or only the database can tell who may see it. For a
-- table with a row rule (its column `owner_column`), `new` and `old` hold
-- that column alone, of the new and the old row (null where the op has no
-- such row, as in a whole event), so that the worker can judge the event by
-- the rule as it judges a whole one.
create or replace function pbp_private.key_only_event(table_name text, op text, key_value jsonb,
  stamp timestamptz, owner_column text, new_row jsonb, old_row jsonb) returns text
language sql stable set search_path = pg_catalog, pg_temp as $$
  select case when owner_column is null then
    json_build_object('table', table_name, 'op', op, 'key', key_value, 'mtime', stamp, 'truncated', true)
  else
    json_build_object('table', table_name, 'op', op, 'key', key_value, 'mtime', stamp,
      'new', case when new_row is not null then json_build_object(owner_column, new_row -> owner_column) end,
      'old', case when old_row is not null then json_build_object(owner_column, old_row -> owner_column) end,
      'truncated', true)
  end::text
$$;
revoke all on function pbp_private.key_only_event(text, text, jsonb, timestamptz, text, jsonb, jsonb) from public;

-- The largest event each source sends whole; a larger row goes as its key
-- only, marked truncated, and the client fetches it. pg_notify refuses 8000
-- bytes or more. The WAL takes any size, but every worker keeps each event in
-- memory and pbp-notifyd's frames stop at 8 MiB and 64 KiB (ChangeStream's
-- StreamFrame.maximumLength), so the wal source stops at 8 MiB.
-- No SET clause, so that the triggers' calls are inlined: nothing in it
-- depends on the search path.
create or replace function pbp_private.event_size_limit(source text) returns integer
language sql immutable as $$
  select case when source operator(pg_catalog.=) 'wal' then 8388608 else 8000 end
$$;
revoke all on function pbp_private.event_size_limit(text) from public;

-- The delete of a row's old key, when an update changed the key: whole, or
-- key-only when only the database can tell who may see the row (`guarded`)
-- or when the whole is too large for the source (`size_limit`, bytes).
drop function if exists pbp_private.removal_event(text, jsonb, timestamptz, text, json, jsonb);
drop function if exists pbp_private.removal_event(text, jsonb, timestamptz, text, json, jsonb, boolean, boolean);
create or replace function pbp_private.removal_event(table_name text, key_value jsonb, stamp timestamptz,
  owner_column text, old_whole json, old_row jsonb, guarded boolean, size_limit integer) returns text
language plpgsql stable set search_path = pg_catalog, pg_temp as $$
declare
  payload text;
begin
  if not guarded then
    payload := json_build_object('table', table_name, 'op', 'delete', 'key', key_value, 'mtime', stamp,
      'new', null, 'old', old_whole)::text;
    if octet_length(payload) < size_limit then
      return payload;
    end if;
  end if;
  return pbp_private.key_only_event(table_name, 'delete', key_value, stamp, owner_column, null, old_row);
end $$;
revoke all on function pbp_private.removal_event(text, jsonb, timestamptz, text, json, jsonb, boolean, integer)
  from public;

-- One event per changed row, on the database's change source (a NOTIFY on
-- the private channel, or a message in the WAL). SECURITY DEFINER, to read
-- the channel and to emit. pg_notify refuses payloads of 8000 bytes or more,
-- and a failing trigger would fail the writer's transaction: with the
-- notify source a row too large is sent as its key only, marked truncated,
-- and the client fetches it; the wal source sends rows whole up to 8 MiB
-- (pbp_private.event_size_limit). A table under row
-- security without a row rule (policies of its own) sends every row so:
-- its policies can be judged only by the database, when the client fetches
-- the row through the API. Whether a table is under row security is looked
-- up on each row, since ALTER TABLE may turn it on at any time.
--
-- Its cost is paid on every row written, so it converts the row to JSON once
-- (jsonb only where a row rule or a key-only event needs it), emits without
-- a further function call, and has no SET search_path (see emit_event):
-- every name in it is schema-qualified, types and operators too, and no
-- construct that looks an operator up by the search path (IS DISTINCT FROM,
-- IN) is used. Measured (EXPLAIN ANALYZE's trigger time per row, 5,000-row
-- statements, best of 5): 15.5 µs per inserted row before, 9.8 after.
create or replace function pbp_notify() returns trigger
language plpgsql security definer as $$
declare
  key_column pg_catalog.text := tg_argv[0];
  -- The row rule's column, when the table has one (pbp_watch() passes it).
  owner_column pg_catalog.text := tg_argv[1];
  table_name pg_catalog.text := tg_table_name::pg_catalog.text;
  op pg_catalog.text := pg_catalog.lower(tg_op);
  channel pg_catalog.text;
  source pg_catalog.text;
  new_whole pg_catalog.json;
  old_whole pg_catalog.json;
  new_row pg_catalog.jsonb;
  old_row pg_catalog.jsonb;
  key_value pg_catalog.json;
  old_key pg_catalog.jsonb;
  stamp pg_catalog.timestamptz;
  guarded pg_catalog.bool;
  key_only pg_catalog.bool;
  size_limit pg_catalog.int4;
  payload pg_catalog.text;
  removal pg_catalog.text;
begin
  select s.channel, s.source into channel, source from pbp_private.stream s;
  size_limit := pbp_private.event_size_limit(source);
  if tg_op operator(pg_catalog.=) 'DELETE' then
    old_whole := pg_catalog.to_json(old);
    key_value := old_whole operator(pg_catalog.->) key_column;
    stamp := pg_catalog.clock_timestamp();
  else
    new_whole := pg_catalog.to_json(new);
    key_value := new_whole operator(pg_catalog.->) key_column;
    stamp := new.mtime;
    if tg_op operator(pg_catalog.=) 'UPDATE' then
      old_whole := pg_catalog.to_json(old);
    end if;
  end if;
  guarded := owner_column is null and (select c.relrowsecurity from pg_catalog.pg_class c
                                       where c.oid operator(pg_catalog.=) tg_relid);
  key_only := guarded;
  if not key_only then
    payload := pg_catalog.json_build_object('table', table_name, 'op', op, 'key', key_value, 'mtime', stamp,
      'new', new_whole, 'old', old_whole)::pg_catalog.text;
    key_only := pg_catalog.octet_length(payload) operator(pg_catalog.>=) size_limit;
  end if;
  if key_only or owner_column is not null then
    new_row := new_whole::pg_catalog.jsonb;
    old_row := old_whole::pg_catalog.jsonb;
    -- An update that changed the key: a key-only event names only the new
    -- key, and a viewer of a row-rule table who may see only the old row
    -- receives the update as a removal under the new key; either way a
    -- client could never drop the row under the old one. Say first that the
    -- old key's row is gone (a delete reaches every watcher of it, judged by
    -- the old row).
    if tg_op operator(pg_catalog.=) 'UPDATE' then
      old_key := old_row operator(pg_catalog.->) key_column;
      if not coalesce(old_key operator(pg_catalog.=) key_value::pg_catalog.jsonb, false) then
        removal := pbp_private.removal_event(table_name, old_key, stamp, owner_column, old_whole, old_row, guarded,
          size_limit);
        if source operator(pg_catalog.=) 'wal' then
          perform pg_catalog.pg_logical_emit_message(true, 'pbp', removal);
        else
          perform pg_catalog.pg_notify(channel, removal);
        end if;
      end if;
    end if;
    if key_only then
      payload := pbp_private.key_only_event(table_name, op, key_value::pg_catalog.jsonb, stamp, owner_column,
        new_row, old_row);
    end if;
  end if;
  -- emit_event's two branches, inline.
  if source operator(pg_catalog.=) 'wal' then
    perform pg_catalog.pg_logical_emit_message(true, 'pbp', payload);
  else
    perform pg_catalog.pg_notify(channel, payload);
  end if;
  return null;
end $$;

-- TRUNCATE fires no row triggers: one event says the table is now empty.
create or replace function pbp_notify_truncate() returns trigger
language plpgsql security definer set search_path = pg_catalog, pg_temp as $$
declare
  channel text;
  source text;
begin
  select s.channel, s.source into channel, source from pbp_private.stream s;
  perform pbp_private.emit_event(source, channel, json_build_object(
    'table', tg_table_name, 'op', 'truncate', 'key', null, 'mtime', clock_timestamp())::text);
  return null;
end $$;

-- The watched tables: what pbp-fcgi serves (pbp_watched_tables()). A
-- regclass follows a renamed table; a dropped one leaves an oid that no
-- longer names a table, which the readers skip. A table with a row rule
-- names it: the rows a request may see and write are those whose
-- `owner_column` equals the claim `owner_claim` of its token (see pbp_watch).
create table if not exists pbp_private.watched (
  relation regclass primary key,
  since timestamptz not null default clock_timestamp()
);
revoke all on pbp_private.watched from public;
alter table pbp_private.watched
  add column if not exists owner_column name,
  add column if not exists owner_claim text;
do $$
begin
  if not exists (select from pg_constraint where conrelid = 'pbp_private.watched'::regclass
                 and conname = 'watched_rule_whole') then
    alter table pbp_private.watched add constraint watched_rule_whole
      check ((owner_column is null) = (owner_claim is null));
  end if;
end $$;
-- Tables watched before the catalog existed: those with the notify trigger.
insert into pbp_private.watched (relation)
select distinct tgrelid::regclass from pg_trigger where tgname = 'pbp_notify'
on conflict do nothing;

-- Makes a table watched: mtime column maintained, table_mtime bumped, every
-- row change notified, the table in the catalog. The table needs a
-- single-column primary key and an `mtime timestamptz` column. Calling it
-- again changes nothing.
--
-- A row rule (`owner_column` and `owner_claim`, both or neither): a request
-- may see, insert, update and delete only the rows whose owner column equals
-- the claim's value in its token, as `request.jwt.claims ->> owner_claim`
-- gives it (a string claim's text; a missing claim or no claims: no row).
-- PBP enables row security on the table and makes that rule its policy
-- `pbp_owner` (for every command, USING and WITH CHECK), and pbp-fcgi judges
-- the table's events by the same rule (pbp_row_rules()): one definition,
-- two enforcements. So that both compare alike, the owner column is text or
-- varchar under a deterministic collation (byte for byte; a null owner
-- matches nobody), and the table has no other policy (the worker would not
-- know it). Called again without a rule, the table keeps the one it has: a
-- call that forgets the rule never opens the table; pbp_unwatch() drops it.
-- A renamed owner column needs the rule given again with its new name.
drop function if exists pbp_watch(regclass);
create or replace function pbp_watch(target regclass, owner_column name default null, owner_claim text default null)
returns void
language plpgsql as $$
declare
  key_column text;
  table_name text := (select relname from pg_class where oid = target);
  rule_column name := pbp_watch.owner_column;
  rule_claim text := pbp_watch.owner_claim;
  column_type regtype;
  column_collation oid;
  other_policy name;
  claim_value text;
begin
  if (rule_column is null) <> (rule_claim is null) then
    raise exception 'pbp_watch: a row rule needs both owner_column and owner_claim';
  end if;
  if rule_column is null then
    select w.owner_column, w.owner_claim into rule_column, rule_claim
    from pbp_private.watched w where w.relation = target;
  end if;
  select a.attname into key_column
  from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
  where i.indrelid = target and i.indisprimary and i.indnkeyatts = 1;
  if key_column is null then
    raise exception 'pbp_watch: % needs a single-column primary key', target;
  end if;
  if rule_column is not null then
    select a.atttypid, a.attcollation into column_type, column_collation
    from pg_attribute a where a.attrelid = target and a.attname = rule_column and a.attnum > 0 and not a.attisdropped;
    if not found then
      raise exception 'pbp_watch: % has no column % for its row rule', target, rule_column;
    end if;
    if column_type not in ('text'::regtype, 'character varying'::regtype)
       or not (select c.collisdeterministic from pg_collation c where c.oid = column_collation) then
      raise exception 'pbp_watch: the row rule''s column %.% must be text or varchar under a deterministic collation, not %',
        target, rule_column, column_type;
    end if;
    if rule_claim = '' then
      raise exception 'pbp_watch: the row rule of % needs a claim name', target;
    end if;
    select p.polname into other_policy from pg_policy p where p.polrelid = target and p.polname <> 'pbp_owner' limit 1;
    if found then
      raise exception 'pbp_watch: % has policy %: a table with a row rule may have no other policy', target, other_policy;
    end if;
    -- nullif: a claims setting that a session once set reads as '' after its transaction.
    claim_value := format($f$nullif(current_setting('request.jwt.claims', true), '')::json ->> %L$f$, rule_claim);
    execute format('alter table %s enable row level security', target);
    execute format('drop policy if exists pbp_owner on %s', target);
    execute format('create policy pbp_owner on %s for all using (%I = %s) with check (%I = %s)',
      target, rule_column, claim_value, rule_column, claim_value);
  end if;
  execute format('create index if not exists %I on %s (mtime)', table_name || '_mtime_idx', target);
  execute format('drop trigger if exists pbp_set_mtime on %s', target);
  execute format('create trigger pbp_set_mtime before insert or update on %s
                  for each row execute function pbp_set_mtime()', target);
  execute format('drop trigger if exists pbp_touch_table on %s', target);
  execute format('create trigger pbp_touch_table after insert or update or delete or truncate on %s
                  for each statement execute function pbp_touch_table()', target);
  execute format('drop trigger if exists pbp_notify on %s', target);
  if rule_column is null then
    execute format('create trigger pbp_notify after insert or update or delete on %s
                    for each row execute function pbp_notify(%L)', target, key_column);
  else
    execute format('create trigger pbp_notify after insert or update or delete on %s
                    for each row execute function pbp_notify(%L, %L)', target, key_column, rule_column);
  end if;
  execute format('drop trigger if exists pbp_notify_truncate on %s', target);
  execute format('create trigger pbp_notify_truncate after truncate on %s
                  for each statement execute function pbp_notify_truncate()', target);
  -- Sixteen counters: as many writers at once never wait nor fall back to
  -- the log. The first says since when the table is watched (its first
  -- Last-Modified).
  insert into pbp_private.table_stamp_base (name, slot, mtime)
  select table_name, slot, case when slot = 0 then clock_timestamp() else '-infinity' end
  from generate_series(0, 15) slot
  on conflict do nothing;
  insert into pbp_private.watched (relation, owner_column, owner_claim) values (target, rule_column, rule_claim)
  on conflict (relation) do update set owner_column = excluded.owner_column, owner_claim = excluded.owner_claim;
end $$;

-- Stops watching a table: its triggers, its row rule's policy and its
-- catalog row go, its rows and its mtime column stay. Row security stays on:
-- with no policy left, no role but the table's owner sees a row, so
-- unwatching never opens a table (`alter table … disable row level
-- security` does, deliberately). pbp-fcgi stops serving it at its next look
-- at the catalog (within seconds; at a reload at the latest).
create or replace function pbp_unwatch(target regclass) returns void
language plpgsql as $$
begin
  execute format('drop trigger if exists pbp_set_mtime on %s', target);
  execute format('drop trigger if exists pbp_touch_table on %s', target);
  execute format('drop trigger if exists pbp_notify on %s', target);
  execute format('drop trigger if exists pbp_notify_truncate on %s', target);
  if exists (select from pbp_private.watched w where w.relation = target and w.owner_column is not null) then
    execute format('drop policy if exists pbp_owner on %s', target);
  end if;
  delete from pbp_private.watched where relation = target;
end $$;

-- The watched tables that still exist, for pbp-fcgi's catalog.
create or replace function public.pbp_watched_tables() returns setof regclass
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select w.relation from pbp_private.watched w join pg_class c on c.oid = w.relation
$$;

-- The row rules of the watched tables that still exist, for pbp-fcgi to
-- judge events by: an event of `relation` reaches a request whose claims'
-- `owner_claim` (->> of request.jwt.claims) equals, byte for byte, the
-- `owner_column` member of the event's new row (delivered as is) or only of
-- its old row (delivered as a removal); a null on either side never matches.
create or replace function public.pbp_row_rules()
returns table (relation regclass, owner_column text, owner_claim text)
language sql stable security definer set search_path = pg_catalog, pg_temp as $$
  select w.relation, w.owner_column::text, w.owner_claim
  from pbp_private.watched w join pg_class c on c.oid = w.relation
  where w.owner_column is not null
$$;

-- One page of a collection, for pbp-fcgi: the rows of `target` in key order
-- after `after` (keyset pagination; null for the first page), at most
-- `max_rows`, and no more than `max_bytes` bytes of JSON unless the first row
-- alone is larger; `more` says that rows follow, and `last_key` is the `after`
-- of the next page. The rows are rendered one at a time and the loop stops at
-- the budget (a FOR loop reads its query a few rows at a time), so a table of
-- huge rows costs a page, not `max_rows` of them, while a page of small rows
-- costs about what one json_agg does (a recursive walk of the index, tried
-- first, cost 3 to 4 times as much). STABLE: it reads in the snapshot of the
-- statement that calls it, the one the table's stamp is read in beside it.
create or replace function pbp_page(target regclass, key_column text, key_type regtype, after text,
  max_rows int, max_bytes bigint, out rows text, out last_key text, out more boolean)
language plpgsql stable as $$
declare
  row_json text;
  row_key text;
  parts text[] := '{}';
  bytes bigint := 0;
begin
  more := false;
  for row_json, row_key in execute format(
      'select row_to_json(t)::text, t.%1$I::text from %2$s t where $1 is null or t.%1$I > $1::%3$s '
      'order by t.%1$I limit $2', key_column, target, key_type)
    using after, max_rows + 1
  loop
    if cardinality(parts) = max_rows or (cardinality(parts) > 0 and bytes + octet_length(row_json) > max_bytes) then
      more := true;
      exit;
    end if;
    parts := parts || row_json;
    bytes := bytes + octet_length(row_json) + 1;
    last_key := row_key;
  end loop;
  rows := '[' || array_to_string(parts, ',') || ']';
end $$;

-- Only PBP's owner may call these or attach them to a table (a trigger fires
-- whoever writes, but CREATE TRIGGER needs EXECUTE): a role with a table of
-- its own named like a watched one could otherwise send events in its name.
revoke all on function pbp_set_mtime(), pbp_touch_table(), pbp_notify(), pbp_notify_truncate(),
  pbp_watch(regclass, name, text), pbp_unwatch(regclass), pbp_watched_tables(), pbp_row_rules(),
  pbp_stream_channel(), pbp_page(regclass, text, regtype, text, int, bigint),
  pbp_change_source(), pbp_set_change_source(text) from public;
