-- The services' roles: they log in, own nothing and are never superusers.
-- pbp_notifyd only LISTENs. pbp_app reads and writes the watched tables.
do $$
begin
  if not exists (select from pg_roles where rolname = 'pbp_notifyd') then
    create role pbp_notifyd login;
  end if;
  if not exists (select from pg_roles where rolname = 'pbp_app') then
    create role pbp_app login;
  end if;
end $$;

grant connect on database :"DBNAME" to pbp_notifyd, pbp_app;
grant usage on schema public to pbp_app;
grant select on table_mtime to pbp_app;
-- Every watched table: the tables with the pbp_notify trigger.
do $$
declare
  watched regclass;
begin
  for watched in select distinct tgrelid::regclass from pg_trigger where tgname = 'pbp_notify' loop
    execute format('grant select, insert, update, delete on %s to pbp_app', watched);
  end loop;
end $$;
grant usage, select on all sequences in schema public to pbp_app;
