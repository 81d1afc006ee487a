-- The services' roles: they log in, own nothing and are never superusers.
-- pbp_notifyd only LISTENs, on the channel that pbp_stream_channel() names.
-- pbp_app reads and writes the watched tables. Nobody else may connect:
-- PostgreSQL grants CONNECT and TEMPORARY on a new database to PUBLIC, and
-- any role that can connect can NOTIFY.
do $$
begin
  if not exists (select from pg_roles where rolname = 'pbp_notifyd') then
    create role pbp_notifyd login;
  end if;
  if not exists (select from pg_roles where rolname = 'pbp_app') then
    create role pbp_app login;
  end if;
end $$;

revoke connect, temporary on database :"DBNAME" from public;
grant connect on database :"DBNAME" to pbp_notifyd, pbp_app;
-- PostgreSQL 15 no longer lets PUBLIC create in schema public; a database
-- made by an older one still does.
revoke create on schema public from public;
grant usage on schema public to pbp_app, pbp_notifyd;
grant execute on function pbp_stream_channel() to pbp_notifyd;
grant select on table_mtime to pbp_app;
grant execute on function pbp_page(regclass, text, regtype, text, int, bigint) to pbp_app;
grant execute on function pbp_watched_tables() to pbp_app;
-- Every watched table.
do $$
declare
  watched regclass;
begin
  for watched in select pbp_watched_tables() loop
    execute format('grant select, insert, update, delete on %s to pbp_app', watched);
  end loop;
end $$;
grant usage, select on all sequences in schema public to pbp_app;
