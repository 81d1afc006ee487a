-- The publication pbp-notifyd's wal source starts pgoutput with (issue 16).
--
-- pgoutput will not start without a publication, and it reads the change
-- stream's events as logical decoding messages (messages 'true'), which need
-- none: so the publication has no tables, and no row change is ever sent.
-- It must exist before the slot is made: a slot decodes each transaction with
-- the catalog as it was then, so a slot made before its publication fails on
-- the first row change of any table ("publication ... does not exist"), even
-- once the publication is created (measured on PostgreSQL 15). Harmless for
-- the notify source.
-- Without wal_level=logical PostgreSQL warns that the publication publishes
-- nothing, at every migration of a notify-source site: true, and no news.
set local client_min_messages = error;
do $$
begin
  if not exists (select from pg_publication where pubname = 'pbp_messages') then
    create publication pbp_messages;
  end if;
end
$$;
