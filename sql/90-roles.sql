-- The services' roles, and who may do what. The login roles own nothing and
-- are never superusers; nobody else may connect: PostgreSQL grants CONNECT
-- and TEMPORARY on a new database to PUBLIC, and any role that can connect
-- can NOTIFY.
--
-- pbp_notifyd (LOGIN) only LISTENs, on the channel pbp_stream_channel() names.
--
-- pbp_wal (LOGIN REPLICATION) is what pbp-notifyd --source wal logs in as
-- (issue 16): it reads the database's logical replication slot, and may
-- call pbp_change_source(), on the replication connection itself; no
-- table, no other function. A role of its own rather than pbp_notifyd with
-- REPLICATION, because REPLICATION is far more than reading PBP's events:
-- it may decode every table of the database with any output plugin, and
-- stream the whole cluster (every database, the roles' password hashes)
-- wherever pg_hba.conf has a `replication` line, as Debian's default has for
-- local peer connections. A site on the notify source, the default, should
-- not carry that in the role its notifyd runs as, and pbp_notifyd's channel
-- is no business of the wal reader's. With Debian's peer authentication the
-- notifyd service user maps to it in pg_ident.conf (docs/deploy.md).
--
-- pbp_app (LOGIN NOINHERIT) is pbp-fcgi's authenticator, as in PostgREST: it
-- has only its own privileges, and each request acts as the role its token
-- names (SET LOCAL ROLE in the request's transaction, the token's claims in
-- the setting `request.jwt.claims`, set transaction-locally), so that GRANTs
-- and row security decide what the request may read and write. Its own
-- privileges are what no request's role is needed for: the catalog
-- (pbp_watched_tables(), pbp_row_rules()), and the stamps and the page
-- function (which give no row by themselves).
--
-- The roles a token may name, NOLOGIN, each granted to pbp_app:
--   pbp_anon  a request without a token (when pbp-fcgi is given it as its
--             anonymous role): reads and writes testtype and todo; nothing
--             of notes.
--   pbp_user  a signed-in user: testtype and todo as pbp_anon, and notes,
--             where the row rule (sql/30-notes.sql) keeps each user to the
--             notes whose owner is the token's `sub`.
-- Both may use the machinery every request uses: table_mtime, pbp_page(),
-- pbp_watched_tables(), pbp_row_rules(), and the sequences of the serial
-- keys of the tables they may insert into (identity columns need none).
-- Another role for tokens: create it NOLOGIN, grant it the machinery and
-- its tables, and grant it to pbp_app. A table of your own: grant it to the
-- roles that should use it (never to pbp_app).
do $$
begin
  if not exists (select from pg_roles where rolname = 'pbp_notifyd') then
    create role pbp_notifyd login;
  end if;
  if not exists (select from pg_roles where rolname = 'pbp_wal') then
    create role pbp_wal login replication;
  end if;
  if not exists (select from pg_roles where rolname = 'pbp_app') then
    create role pbp_app login noinherit;
  end if;
  if not exists (select from pg_roles where rolname = 'pbp_anon') then
    create role pbp_anon nologin;
  end if;
  if not exists (select from pg_roles where rolname = 'pbp_user') then
    create role pbp_user nologin;
  end if;
end $$;
-- Earlier versions made pbp_app INHERIT.
alter role pbp_app login noinherit;
alter role pbp_wal login replication;
alter role pbp_anon nologin;
alter role pbp_user nologin;
-- (Granted only when missing: granting it again is a NOTICE on each run.)
do $$
declare
  token_role text;
begin
  foreach token_role in array array['pbp_anon', 'pbp_user'] loop
    if not exists (select from pg_auth_members m
                   where m.roleid = token_role::regrole and m.member = 'pbp_app'::regrole) then
      execute format('grant %I to pbp_app', token_role);
    end if;
  end loop;
end $$;

revoke connect, temporary on database :"DBNAME" from public;
grant connect on database :"DBNAME" to pbp_notifyd, pbp_wal, pbp_app;
-- PostgreSQL 15 no longer lets PUBLIC create in schema public; a database
-- made by an older one still does.
revoke create on schema public from public;
grant usage on schema public to pbp_notifyd, pbp_wal, pbp_app, pbp_anon, pbp_user;
grant execute on function pbp_stream_channel() to pbp_notifyd;
-- Either notifyd checks that the database sends the source it reads.
grant execute on function pbp_change_source() to pbp_notifyd, pbp_wal;

-- The machinery.
grant execute on function pbp_watched_tables(), pbp_row_rules() to pbp_app, pbp_anon, pbp_user;
grant select on table_mtime to pbp_app, pbp_anon, pbp_user;
grant execute on function pbp_page(regclass, text, regtype, text, int, bigint) to pbp_app, pbp_anon, pbp_user;

-- The example tables: their privileges are set whole (revoked first), so
-- that a database of any earlier version ends with exactly these. (Earlier
-- versions granted pbp_app every watched table and every sequence.)
revoke all on testtype, todo, notes from pbp_app, pbp_anon, pbp_user;
revoke all on sequence testtype_id_seq, todo_todo_id_seq, notes_id_seq from pbp_app, pbp_anon, pbp_user;
grant select, insert, update, delete on testtype, todo to pbp_anon, pbp_user;
grant usage on sequence testtype_id_seq to pbp_anon, pbp_user;
grant select, insert, update, delete on notes to pbp_user;
grant usage on sequence notes_id_seq to pbp_user;
-- pbp_app itself uses none of them: every request acts as a token's role
-- or as pbp_anon (the revokes above take back what earlier versions granted).
